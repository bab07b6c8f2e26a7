"""Mixture simulation: which clips are mixed, how they are cropped and scaled.

Mixtures are stored as tables of clip pairs rather than audio, so they stay small and
each one can be re-rendered exactly by ``render_mixture``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from apt_uss.data.clips import as_store
from apt_uss.data.streams import stream
from apt_uss.errors import AptUssError
from apt_uss.params.checks import check_crop_rule, check_mix_rule

ENERGY_RATIO_BOUNDS = (0.02, 50.0)
LOUD_CROP_TRIES = 3


def _pick_interferers(rng: np.random.Generator, targets: np.ndarray, pool: pd.DataFrame) -> np.ndarray:
    """For each target class, the row index in ``pool`` of a clip of another class."""
    pool_targets = pool["target"].to_numpy()
    picks = np.empty(len(targets), dtype=int)
    for i, t in enumerate(targets):
        others = np.flatnonzero(pool_targets != t)
        if len(others) == 0:
            raise AptUssError("mixtures need clips of at least two classes")
        picks[i] = others[rng.integers(len(others))]
    return picks


def _pairs(targets: pd.DataFrame, pool: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    picks = pool.iloc[_pick_interferers(rng, targets["target"].to_numpy(), pool)]
    return pd.DataFrame({
        "target_file": targets["filename"].to_numpy(),
        "target": targets["target"].to_numpy(),
        "target_class": targets["category"].to_numpy(),
        "interferer_file": picks["filename"].to_numpy(),
        "interferer": picks["target"].to_numpy(),
        "interferer_class": picks["category"].to_numpy(),
    })


def random_offsets(rng: np.random.Generator, lengths: np.ndarray, crop_samples: int) -> np.ndarray:
    """A uniform start for a ``crop_samples`` crop of each clip (0 for clips no longer than the crop)."""
    room = np.maximum(np.asarray(lengths) - crop_samples, 0)
    return (rng.random(len(room)) * (room + 1)).astype(int)


def crop_offsets(rng: np.random.Generator, files, lengths: np.ndarray, crop_samples: int, rule: str = "random",
                 clips=None) -> np.ndarray:
    """The start of a ``crop_samples`` crop of each clip, by ``rule``: "random" (``random_offsets``) or
    "loud" (the loudest of ``LOUD_CROP_TRIES`` uniform starts; needs ``clips``, a ``ClipStore`` or mapping)."""
    check_crop_rule(rule)
    if rule == "random":
        return random_offsets(rng, lengths, crop_samples)
    if clips is None:
        raise ValueError("crop_rule='loud' needs the clips' audio")
    store = as_store(clips)
    tries = random_offsets(rng, np.repeat(np.asarray(lengths), LOUD_CROP_TRIES), crop_samples)
    tries = tries.reshape(-1, LOUD_CROP_TRIES)
    energy = np.array([[np.square(store.segment(name, int(o), crop_samples), dtype=np.float64).sum() for o in row]
                       for name, row in zip(files, tries)])
    return tries[np.arange(len(tries)), energy.argmax(axis=1)] if len(tries) else tries[:, 0]


def simulate_mixtures(
    splits: pd.DataFrame,
    clip_samples: dict[str, int],
    seed: int,
    epochs: int,
    crop_samples: int,
    crop_rule: str = "random",
    clips=None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (training mixtures, test mixtures).

    Test: every test clip is the target once, with an interferer of another class from
    the test folds, over the whole clip. Training: for each epoch, every training clip is
    the target once, with an interferer of another class from the training set, both
    cropped to ``crop_samples`` (the target's start by ``crop_rule``, see ``crop_offsets``, which
    reads ``clips`` for "loud"; the interferer's uniformly, from the same generator, so
    its draw differs between rules); pairs are re-drawn each epoch.
    """
    train = splits[splits["split"] == "train"].reset_index(drop=True)
    test = splits[splits["split"] == "test"].reset_index(drop=True)
    test_rng = stream("test_mixtures", seed)
    test_mix = _pairs(test, test, test_rng)
    test_mix.insert(0, "mixture_id", [f"test-{i:05d}" for i in range(len(test_mix))])

    epochs_tables = []
    for epoch in range(int(epochs)):
        rng = stream("train_mixtures", seed, epoch)
        order = train.iloc[rng.permutation(len(train))].reset_index(drop=True)
        table = _pairs(order, train, rng)
        for side, rule in (("target", crop_rule), ("interferer", "random")):
            files = table[f"{side}_file"]
            table[f"{side}_offset"] = crop_offsets(rng, files, files.map(clip_samples).to_numpy(), crop_samples,
                                                   rule, clips)
        table.insert(0, "epoch", epoch)
        epochs_tables.append(table)
    train_mix = pd.concat(epochs_tables, ignore_index=True) if epochs_tables else pd.DataFrame()
    return train_mix, test_mix


def simulate_validation_mixtures(splits: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Mixtures of the validation clips (held-out training-fold clips), made as the test mixtures are: every
    validation clip the target once, over the whole clip, with a validation clip of another class."""
    validation = splits[splits["split"] == "validation"].reset_index(drop=True)
    table = _pairs(validation, validation, stream("validation_mixtures", seed))
    table.insert(0, "mixture_id", [f"validation-{i:05d}" for i in range(len(table))])
    return table


def mix(target: np.ndarray, interferer: np.ndarray, rule: str) -> np.ndarray:
    """Mixture of two equal-length signals.

    ``energy_match`` scales the interferer to the target's energy (ratio clipped to
    [0.02, 50], as the reference backbone was trained); ``sum`` adds them as they are.
    """
    check_mix_rule(rule)
    if rule == "energy_match":
        e_t = float(np.sum(target.astype(np.float64) ** 2))
        e_i = float(np.sum(interferer.astype(np.float64) ** 2))
        ratio = np.sqrt(e_t / e_i) if e_i > 0 else 1.0
        interferer = interferer * np.float32(np.clip(ratio, *ENERGY_RATIO_BOUNDS))
    return (target + interferer).astype(np.float32)


def render_mixture(row, clips, rule: str, length: int | None = None):
    """(mixture, target) for one row of a mixture table.

    Rows with a ``mixture_file`` (MUSDB18) take the track's own mixture at the target's
    offset; the others mix the target with the interferer by ``rule``. ``clips`` is a
    ``ClipStore`` or a mapping of name to array.
    """
    store = as_store(clips)
    mixture_file = getattr(row, "mixture_file", None)
    if isinstance(mixture_file, str) and mixture_file:
        offset, n = int(row.target_offset), int(getattr(row, "length", 0) or length or 0) or None
        return store.segment(mixture_file, offset, n), store.segment(row.target_file, offset, n)
    target = store.segment(row.target_file, int(getattr(row, "target_offset", 0)), length)
    interferer = store.segment(row.interferer_file, int(getattr(row, "interferer_offset", 0)), length)
    n = min(len(target), len(interferer))
    target, interferer = target[:n], interferer[:n]
    return mix(target, interferer, rule), target
