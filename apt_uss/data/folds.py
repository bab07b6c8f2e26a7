"""Train/test fold split and nested few-shot sampling."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from apt_uss.data.streams import stream
from apt_uss.errors import AptUssError

log = logging.getLogger(__name__)


def class_table(meta: pd.DataFrame) -> pd.DataFrame:
    """One row per class, ordered by target id: the row order of every prompt table."""
    classes = meta[["target", "category"]].drop_duplicates().sort_values("target")
    if classes["target"].duplicated().any():
        raise AptUssError("metadata maps one target id to several categories")
    return classes.reset_index(drop=True)


def split_folds(
    meta: pd.DataFrame,
    n_shot: int | None,
    seed: int,
    train_folds: list[int],
    test_folds: list[int],
    validation_clips: int = 0,
) -> pd.DataFrame:
    """Return the clips used: ``n_shot`` training clips per class, ``validation_clips`` validation clips per
    class, and every test clip (column ``split``: train, validation, test).

    Each class's training-fold clips are put in an order that depends only on the seed and the class.
    The last ``validation_clips`` of that order are the class's validation clips, held out of training
    whatever ``n_shot`` is, so every choice (settings, the epoch to keep) can be made on them and not on
    the test folds; shots are the first ``n_shot`` of the rest, so the 1-shot set lies inside the 5-shot
    set, which lies inside the 10-shot set. ``n_shot=None`` keeps every clip not held out. With
    ``validation_clips=0`` the draw is the one without a validation split. The test set depends on neither.
    """
    if "silent" in meta.columns and meta["silent"].any():
        # A silent clip gives no class evidence as a query and no SDR as a target.
        log.warning("split: leaving out %d silent clip(s)", int(meta["silent"].sum()))
        meta = meta[~meta["silent"].astype(bool)]
    overlap = set(train_folds) & set(test_folds)
    if overlap:
        raise AptUssError(f"folds {sorted(overlap)} are both train and test folds: they must be disjoint")
    known = set(meta["fold"].unique())
    for name, folds in (("train_folds", train_folds), ("test_folds", test_folds)):
        absent = sorted(set(folds) - known)
        if absent:
            raise AptUssError(f"{name} {absent} not in the dataset: its folds are {sorted(known)}")
    train = meta[meta["fold"].isin(train_folds)]
    test = meta[meta["fold"].isin(test_folds)]
    parts = []
    for target, clips in train.groupby("target", sort=True):
        clips = clips.sort_values("filename")
        pool = len(clips) - validation_clips
        if pool < 1:
            raise AptUssError(f"validation_clips={validation_clips} leaves no training clip of class "
                              f"{clips['category'].iloc[0]!r}, which has {len(clips)}: use at most {len(clips) - 1}")
        if n_shot is not None and n_shot > pool:
            held = f" ({validation_clips} are held out for validation)" if validation_clips else ""
            raise AptUssError(
                f"n_shot={n_shot} is larger than the {pool} training clips of class "
                f"{clips['category'].iloc[0]!r}{held}: use 1 to {pool} or 'full'"
            )
        order = stream("shots", seed, int(target)).permutation(len(clips))
        chosen = clips.iloc[order[: n_shot if n_shot is not None else pool]].copy()
        chosen["shot_rank"] = np.arange(len(chosen))
        parts.append(chosen.assign(split="train"))
        if validation_clips:
            parts.append(clips.iloc[np.sort(order[pool:])].assign(split="validation", shot_rank=-1))
    missing = sorted(set(test["target"]) - set(train["target"]))
    if missing:
        raise AptUssError(f"classes {missing} have test clips but no training clips in folds {train_folds}")
    parts.append(test.sort_values(["target", "filename"]).assign(split="test", shot_rank=-1))
    return pd.concat(parts, ignore_index=True)
