"""Pretraining the demo backbone on "seen" synthetic classes, the way the reference backbone was trained.

Stage 1 trains the SED model as a sound classifier of the seen classes (HTS-AT was trained
as an AudioSet tagger). Stage 2 freezes it and trains the separator on
energy-matched two-class mixtures, queried with the SED embedding of the target crop
itself, with a waveform L1 loss (the ZS-ASP recipe) or another of the tuning losses. The seen classes come from a seed
stream of their own (``seen_class``, ``seen_clip``), so they are disjoint from every evaluation
dataset's classes, as AudioSet's were from ESC-50's in the paper; or they are the real recordings
of the ``debian_sounds_seen`` corpus (``apt_uss/data/debian_sounds.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from fractions import Fraction

import numpy as np
import torch

from apt_uss.data import synthetic
from apt_uss.data.mixtures import mix
from apt_uss.data.streams import stream
from apt_uss.errors import AptUssError

log = logging.getLogger(__name__)

CROP_SECONDS = 2.0


def seen_class_recipe(seed: int, c: int) -> dict:
    """The recipe of seen (pretraining) class ``c`` of the corpus made with ``seed``."""
    return synthetic._class_recipe(stream("seen_class", seed, c), c)


def seen_corpus(n_classes: int, clips_per_class: int, seed: int = 0,
                sample_rate: int = synthetic.SAMPLE_RATE) -> tuple[np.ndarray, np.ndarray]:
    """(clips (N, samples) float32, class ids (N,)) of ``n_classes`` seen classes, same recipe kinds as the evaluation set."""
    clips, labels = [], []
    started = time.monotonic()
    for c in range(n_classes):
        recipe = seen_class_recipe(seed, c)
        for k in range(clips_per_class):
            rng = stream("seen_clip", seed, c, k)
            clips.append(synthetic.synth_clip(recipe, rng, sample_rate, synthetic.CLIP_SECONDS))
            labels.append(c)
        if (c + 1) % 10 == 0 or c + 1 == n_classes:
            done = (c + 1) * clips_per_class
            log.info("seen corpus: %d/%d clips (%.0f clips/s)", done, n_classes * clips_per_class,
                     done / (time.monotonic() - started))
    return np.stack(clips), np.asarray(labels, np.int64)


def loud_crops(clips: np.ndarray, rng: np.random.Generator, crop: int, tries: int = 3) -> np.ndarray:
    """One ``crop``-sample piece per clip: the loudest of ``tries`` random offsets, so few crops are near-silent."""
    offsets = rng.integers(0, clips.shape[1] - crop + 1, size=(len(clips), tries))
    pieces = np.stack([[clip[o : o + crop] for o in row] for clip, row in zip(clips, offsets)])
    best = (pieces.astype(np.float64) ** 2).sum(axis=2).argmax(axis=1)
    return pieces[np.arange(len(clips)), best].astype(np.float32)


def _progress(stage: str, step: int, steps: int, started: float, **values) -> None:
    rate = step / max(time.monotonic() - started, 1e-9)
    shown = " ".join(f"{k} {v:.4f}" for k, v in values.items())
    log.info("%s: step %d/%d %s | %.2f steps/s, ETA %.0f s", stage, step, steps, shown, rate, (steps - step) / rate)


def _descend(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> float:
    """One optimizer step on ``loss``; returns its value."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def train_sed(sed: torch.nn.Module, clips: np.ndarray, labels: np.ndarray, steps: int, batch_size: int = 16,
              lr: float = 1e-3, seed: int = 0, sample_rate: int = synthetic.SAMPLE_RATE) -> list[float]:
    """Train ``sed`` in place as a classifier of ``labels``; returns the loss of every step."""
    rng = stream("pretrain_sed", seed)
    crop = int(CROP_SECONDS * sample_rate)
    sed.train().requires_grad_(True)  # parameters only: the fixed transforms are buffers
    optimizer = torch.optim.AdamW(sed.parameters(), lr=lr, weight_decay=1e-4)
    losses, started = [], time.monotonic()
    for step in range(1, steps + 1):
        pick = rng.integers(0, len(clips), batch_size)
        wav = torch.from_numpy(loud_crops(clips[pick], rng, crop))
        # The seen classes are exclusive, so softmax cross-entropy over the head's logits
        # (recovered from its sigmoid outputs) learns faster than AudioSet's multi-label BCE.
        logits = torch.logit(sed(wav)["clipwise_output"], eps=1e-6)
        losses.append(_descend(optimizer, torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels[pick]))))
        if step % 50 == 0 or step == steps:
            _progress("pretrain SED", step, steps, started, ce=float(np.mean(losses[-50:])))
    sed.eval().requires_grad_(False)
    return losses


@torch.inference_mode()
def sed_accuracy(sed: torch.nn.Module, clips: np.ndarray, labels: np.ndarray, seed: int = 0,
                 sample_rate: int = synthetic.SAMPLE_RATE) -> float:
    rng = stream("pretrain_checks", seed, 0)
    wav = torch.from_numpy(loud_crops(clips, rng, int(CROP_SECONDS * sample_rate)))
    predicted = torch.cat([sed(part)["clipwise_output"].argmax(dim=1) for part in wav.split(32)])
    return float((predicted.numpy() == labels).mean())


# What queries the separator in pretraining. "own": the SED embedding of the target crop itself (the ZS-ASP
# recipe). "other_clip": the embedding of a loud crop of another recording of the target's class, as a few-shot
# prompt is made of other recordings than the test clip. "class_mean": the mean of the per-clip embeddings of 1 to
# all of the class's other training clips, as the pipeline's n-shot prompts are made (its baseline query).
SEPARATOR_QUERIES = ("own", "other_clip", "class_mean")


def other_clip_crops(clips: np.ndarray, labels: np.ndarray, first: np.ndarray, rng: np.random.Generator,
                     crop: int) -> np.ndarray:
    """A loud crop of a random other clip of each ``first`` clip's class (the clip itself where it is its class's
    only clip)."""
    chosen = np.empty(len(first), dtype=np.int64)
    for i, index in enumerate(first):
        same = np.flatnonzero((labels == labels[index]) & (np.arange(len(labels)) != index))
        chosen[i] = rng.choice(same) if len(same) else index
    return loud_crops(clips[chosen], rng, crop)


def class_mean_queries(clip_embeddings: np.ndarray, labels: np.ndarray, first: np.ndarray,
                       rng: np.random.Generator) -> np.ndarray:
    """For each ``first`` clip, the mean of the embeddings of a random 1 to all of its class's other clips (the clip's
    own where it is its class's only clip): an n-shot prompt of its class, with n drawn uniformly."""
    out = np.empty((len(first), clip_embeddings.shape[1]), dtype=np.float32)
    for i, index in enumerate(first):
        same = np.flatnonzero((labels == labels[index]) & (np.arange(len(labels)) != index))
        if not len(same):
            same = np.array([index])
        n = int(rng.integers(1, len(same) + 1))
        out[i] = clip_embeddings[rng.choice(same, size=n, replace=False)].mean(axis=0)
    return out


# How the separator's training crops can be varied ("none": as recorded). "speed": each crop (target and interferer
# alike) is played at 2^(k/12) times its speed, k a whole number of semitones drawn uniformly from -SPEED_SEMITONES
# to +SPEED_SEMITONES: pitch and tempo move together, as a tape played faster or slower, so each class is heard in
# more timbres than its recordings have, and the SED embeds the crop as played (an "own" query follows it).
SEPARATOR_AUGMENTS = ("none", "speed")
SPEED_SEMITONES = 6


def speed_ratio(semitones: int) -> Fraction:
    """2^(semitones/12) as a fraction with a small denominator (so resampling by it stays cheap)."""
    return Fraction(2.0 ** (semitones / 12)).limit_denominator(24)


def speed_changed_crops(clips: np.ndarray, rng: np.random.Generator, speed_rng: np.random.Generator,
                        crop: int) -> np.ndarray:
    """One ``crop``-sample piece per clip, each played at a random speed (``speed_ratio`` of a uniform whole number
    of semitones in [-SPEED_SEMITONES, SPEED_SEMITONES], from ``speed_rng``): a loud piece of ``crop`` x speed
    samples (offsets from ``rng``, as ``loud_crops`` draws them), resampled to ``crop`` samples."""
    import torchaudio.functional as audio_functional

    out = np.empty((len(clips), crop), dtype=np.float32)
    for i, semitones in enumerate(speed_rng.integers(-SPEED_SEMITONES, SPEED_SEMITONES + 1, size=len(clips))):
        ratio = speed_ratio(int(semitones))
        length = min(-(-crop * ratio.numerator // ratio.denominator), clips.shape[1])
        piece = loud_crops(clips[i : i + 1], rng, length)
        if ratio != 1:
            piece = audio_functional.resample(torch.from_numpy(piece), ratio.numerator, ratio.denominator).numpy()
        played = piece[0, :crop]
        out[i] = np.pad(played, (0, crop - len(played)))
    return out


def training_mixtures(clips, labels, rng, batch_size, crop, return_indices: bool = False,
                      speed_rng: np.random.Generator | None = None):
    """(mixtures, targets, target classes): crops of two different classes, energy-matched as the reference mixes.
    ``return_indices`` adds the target clips' indices. With ``speed_rng`` every crop is played at a random speed
    (``speed_changed_crops``); without it the draws are those of the recipe's plain crops."""
    first = rng.integers(0, len(clips), batch_size)
    other = rng.integers(0, len(clips), batch_size)
    same = labels[first] == labels[other]
    while same.any():
        other[same] = rng.integers(0, len(clips), int(same.sum()))
        same = labels[first] == labels[other]
    if speed_rng is None:
        targets = loud_crops(clips[first], rng, crop)
        interferers = loud_crops(clips[other], rng, crop)
    else:
        targets = speed_changed_crops(clips[first], rng, speed_rng, crop)
        interferers = speed_changed_crops(clips[other], rng, speed_rng, crop)
    mixtures = np.stack([mix(t, i, "energy_match") for t, i in zip(targets, interferers)])
    if return_indices:
        return mixtures, targets, labels[first], first
    return mixtures, targets, labels[first]


def compiled_for_training(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` under ``torch.compile``; where compiling fails (no C++ compiler, say) it runs eagerly instead.

    On 2 CPU cores the demo separator's forward and backward (batch 8, 2-s crops) then take about
    0.56 s instead of 1.1 s, after a compile of 0.5-3 minutes (less with a warm inductor cache):
    in the 60-minute budget that buys some 2,000 more steps, and the separator's quality is what
    bounds APT's gain on the demo.
    """
    import torch._dynamo

    torch._dynamo.config.suppress_errors = True  # a failed compile falls back to eager, with a warning
    return torch.compile(module)


def check_separator_choices(query: str, augment: str, query_name: str = "separator query",
                            augment_name: str = "separator augment") -> None:
    """``query`` and ``augment`` are known and a combination the training can run; the errors name them
    ``query_name`` and ``augment_name`` (the pipeline's steps pass their parameters' names)."""
    if query not in SEPARATOR_QUERIES:
        raise AptUssError(f"{query_name} {query!r} is unknown: known are {', '.join(SEPARATOR_QUERIES)}")
    if augment not in SEPARATOR_AUGMENTS:
        raise AptUssError(f"{augment_name} {augment!r} is unknown: known are {', '.join(SEPARATOR_AUGMENTS)}")
    if augment != "none" and query != "own":
        raise AptUssError(f"{augment_name} {augment!r} needs {query_name} 'own' (the SED embeds the crop as played); "
                          f"{query!r} embeds other recordings as recorded")


def train_separator(separator: torch.nn.Module, sed: torch.nn.Module, clips: np.ndarray, labels: np.ndarray,
                    steps: int, batch_size: int = 8, lr: float = 1e-3, seed: int = 0,
                    sample_rate: int = synthetic.SAMPLE_RATE, compiled: bool = False,
                    query: str = "own", clip_embeddings: np.ndarray | None = None,
                    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = torch.nn.functional.l1_loss,
                    loss_name: str = "l1", augment: str = "none") -> list[float]:
    """Train ``separator`` in place, queried by the frozen ``sed``'s embedding of each target crop (``query``
    "own"), of a crop of another clip of its class ("other_clip") or by the mean of ``clip_embeddings`` (one row
    per clip, the pipeline's per-clip embeddings) of some of its class's other clips ("class_mean";
    ``SEPARATOR_QUERIES``).

    ``compiled``: run the training forward under ``torch.compile`` (the same parameters, faster steps).
    The mixtures are the same draws for any query (the other clips come from a stream of their own).
    ``loss`` (estimates, targets) -> scalar, named ``loss_name`` in the progress lines: the waveform L1 of the ZS-ASP
    recipe by default (the steps pass the tuning losses of ``apt_uss.method.losses``). ``augment``: how the
    training crops are varied (``SEPARATOR_AUGMENTS``; the speeds come from a stream of their own).
    """
    check_separator_choices(query, augment)
    if query == "class_mean" and (clip_embeddings is None or len(clip_embeddings) != len(clips)):
        raise AptUssError("separator query 'class_mean' needs clip_embeddings: one embedding per training clip "
                          f"({len(clips)}), got {None if clip_embeddings is None else len(clip_embeddings)}")
    rng = stream("pretrain_separator", seed)
    query_rng = stream("pretrain_query", seed)
    speed_rng = stream("pretrain_speed", seed) if augment == "speed" else None
    crop = int(CROP_SECONDS * sample_rate)
    sed.eval().requires_grad_(False)
    separator.train().requires_grad_(True)  # parameters only: the STFT kernels are buffers
    optimizer = torch.optim.Adam(separator.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=lr * 0.05)
    forward = separator
    if compiled:
        log.info("pretrain separator: compiling the training step (the first step takes minutes)")
        forward = compiled_for_training(separator)
    losses, started = [], time.monotonic()
    for step in range(1, steps + 1):
        mixtures, targets, _, first = training_mixtures(clips, labels, rng, batch_size, crop, return_indices=True,
                                                        speed_rng=speed_rng)
        target = torch.from_numpy(targets)
        if query == "class_mean":
            query_embedding = torch.from_numpy(class_mean_queries(clip_embeddings, labels, first, query_rng))
        else:
            queried = target if query == "own" else torch.from_numpy(
                other_clip_crops(clips, labels, first, query_rng, crop))
            with torch.no_grad():
                query_embedding = sed(queried)["latent_output"]
        estimate = forward(torch.from_numpy(mixtures), query_embedding)["wav"]
        losses.append(_descend(optimizer, loss(estimate, target)))
        schedule.step()
        if step % 25 == 0 or step == steps:
            _progress("pretrain separator", step, steps, started, **{loss_name: float(np.mean(losses[-25:]))})
    separator.eval().requires_grad_(False)
    return losses
