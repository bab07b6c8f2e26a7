"""Independent random streams, one per purpose, derived from a seed.

numpy pads a short entropy list with zeros, so ``default_rng([s, t])``, ``default_rng([s, t, 0])`` and
``default_rng([s, t, 0, 0])`` are one stream: two purposes keyed by lists of different lengths can
share their draws (with seed 7919 an evaluation class once drew the recipe of a pretraining class).
Here every draw comes from ``SeedSequence(seed, spawn_key=(purpose, *keys))`` with a distinct non-zero
purpose and a fixed number of keys per purpose: the spawn key is mixed in word by word after the
padded seed, so no two purposes, and no two key tuples of one purpose, give the same stream.
"""

from __future__ import annotations

import numpy as np

from apt_uss.errors import AptUssError

# purpose -> (its non-zero key, how many keys a draw of it takes). Never renumber: the key is part of
# every stream of that purpose, so a new number changes the data.
PURPOSES: dict[str, tuple[int, int]] = {
    "dataset_class": (1, 1),     # a synthetic evaluation class's recipe: (target,)
    "dataset_clip": (2, 2),      # one synthetic clip's variation: (target, clip)
    "shots": (3, 1),             # the few-shot draw of one class: (target,)
    "train_mixtures": (4, 1),    # the training mixtures of one epoch: (epoch,)
    "test_mixtures": (5, 0),     # the test mixtures
    "musdb_tracks": (6, 0),      # the MUSDB18 training-track order
    "musdb_mixtures": (7, 1),    # MUSDB18 training segments of one epoch: (epoch,)
    "validation_mixtures": (8, 0),  # the validation mixtures (held-out training-fold clips)
    "bootstrap": (9, 0),         # the sweep's bootstrap resamples of test mixtures
    "corpus_clip": (10, 2),      # one real-audio corpus clip's phrase: (class index, clip)
    "seen_class": (11, 1),       # a synthetic seen (pretraining) class's recipe: (class,)
    "seen_clip": (12, 2),        # one synthetic seen clip's variation: (class, clip)
    "pretrain_sed": (13, 0),     # the SED pretraining batches and crops
    "pretrain_separator": (14, 0),  # the separator pretraining mixtures and crops
    "pretrain_checks": (15, 1),  # the backbone's held-out checks: (0: SED accuracy, 1: separation)
    "corpus_track": (16, 1),     # one rendered MUSDB18-layout song: (track; test tracks from 1000)
    "pretrain_query": (17, 0),   # separator pretraining with query other_clip or class_mean: the query clips, crops
    "backbone_init": (18, 0),    # a new backbone's initial weights (torch's generator is seeded from it)
    "pretrain_speed": (19, 0),   # separator pretraining with augment "speed": each crop's speed
}


def stream(purpose: str, seed: int, *keys: int) -> np.random.Generator:
    """The generator of ``purpose`` for ``seed`` and the purpose's ``keys`` (see ``PURPOSES``)."""
    return np.random.default_rng(seed_sequence(purpose, seed, *keys))


def seed_sequence(purpose: str, seed: int, *keys: int) -> np.random.SeedSequence:
    """The ``SeedSequence`` behind ``stream(purpose, seed, *keys)``, for generators other than numpy's."""
    if purpose not in PURPOSES:
        raise AptUssError(f"random stream {purpose!r} is unknown: known are {', '.join(PURPOSES)}")
    key, n_keys = PURPOSES[purpose]
    if len(keys) != n_keys:
        raise AptUssError(f"random stream {purpose!r} takes {n_keys} key(s), got {len(keys)}")
    if int(seed) < 0 or any(int(k) < 0 for k in keys):
        raise AptUssError(f"random stream {purpose!r}: seed and keys are integers from 0 up")
    return np.random.SeedSequence(int(seed), spawn_key=(key, *map(int, keys)))


def torch_seed(purpose: str, seed: int, *keys: int) -> int:
    """A seed for ``torch.manual_seed`` drawn from the purpose's stream (63 bits, so never negative)."""
    return int(seed_sequence(purpose, seed, *keys).generate_state(2, np.uint64)[0] >> np.uint64(1))
