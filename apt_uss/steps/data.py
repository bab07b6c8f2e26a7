"""The pipeline's data steps: dataset fetch, fold split and mixture simulation.

They read and write tables and audio and never run a model, so this module imports no torch: their pods (0.5 CPU,
1 GiB on a cluster) start in about a second where the model steps' imports take two or more. Only the fetch of a
real dataset loads torch and torchaudio, to convert its audio to the model's format.
"""

from __future__ import annotations

import json
import logging

import pandas as pd

from apt_uss.data.audio import SAMPLE_RATE
from apt_uss.data.clips import ClipStore, clip_frames
from apt_uss.data.dataset import fetch_dataset, is_musdb, load_metadata
from apt_uss.data.folds import split_folds
from apt_uss.data.mixtures import simulate_mixtures, simulate_validation_mixtures
from apt_uss.data.musdb import simulate_stem_mixtures, split_tracks
from apt_uss.errors import AptUssError
from apt_uss.io.atomic import atomic_path
from apt_uss.io.cpus import step_cores
from apt_uss.io.tables import read_table
from apt_uss.params.checks import (
    check_crop_fits,
    check_crop_rule,
    check_mix_rule,
    check_own_seed,
    check_positive,
    check_seed,
    check_validation_clips,
    parse_folds,
    parse_n_shot,
)
from apt_uss.params.spec import defaults, seed_of

log = logging.getLogger(__name__)

MIXING = "mixing.json"
VALIDATION_MIXTURES = "validation_mixtures.csv"
SPLITS_COLUMNS = ("filename", "target", "category", "split")  # what every step reading the splits table needs
MIXTURE_COLUMNS = ("target_file", "target")  # and every step reading a mixture table
# Step defaults are the demo profile's (what the shipped backbone needs), as the pipeline's are.
DEMO = defaults("demo")


def fetch_dataset_step(dataset: str, out_dataset: str, dataset_uri: str = "", n_classes: int = DEMO["n_classes"],
                       seed: int = DEMO["seed"], dataset_sha256: str = "") -> dict:
    """The dataset artifact (``apt_uss.data.dataset.fetch_dataset``); a synthetic set is written by as many
    processes as the step has CPUs (at most one per class, and 4)."""
    check_seed("seed", seed)
    return fetch_dataset(dataset, out_dataset, dataset_uri=dataset_uri, n_classes=n_classes, seed=seed,
                         dataset_sha256=dataset_sha256, processes=step_cores())


def split_folds_step(dataset_dir: str, out_splits: str, n_shot=DEMO["n_shot"], seed: int = DEMO["seed"],
                     train_folds=DEMO["train_folds"], test_folds=DEMO["test_folds"],
                     shot_seed: int = DEMO["shot_seed"],
                     validation_clips: int = DEMO["validation_clips"]) -> pd.DataFrame:
    """The n-shot training clips, ``validation_clips`` held-out clips per class and the test clips; the draw
    follows ``shot_seed`` (-1: ``seed``)."""
    check_seed("seed", seed)
    check_validation_clips(validation_clips)
    check_own_seed("shot_seed", shot_seed)
    seed = seed_of(seed, shot_seed)
    meta = load_metadata(dataset_dir)
    if is_musdb(meta):  # the official train/test split; n_shot counts training tracks
        if int(validation_clips):
            raise AptUssError("validation_clips is for ESC-50-layout datasets: MUSDB18 has no held-out tracks here")
        splits = split_tracks(meta, parse_n_shot(n_shot), int(seed))
    else:
        splits = split_folds(meta, parse_n_shot(n_shot), int(seed),
                             parse_folds(train_folds, "train_folds"), parse_folds(test_folds, "test_folds"),
                             validation_clips=int(validation_clips))
    with atomic_path(out_splits) as tmp:
        splits.to_csv(tmp, index=False)
    counts = splits.groupby("split").size().to_dict()
    log.info("splits: %d train clips, %d validation clips, %d test clips (n_shot=%s)", counts.get("train", 0),
             counts.get("validation", 0), counts.get("test", 0), n_shot)
    return splits


def simulate_mixtures_step(dataset_dir: str, splits_path: str, out_mixtures: str, seed: int = DEMO["seed"],
                           epochs: int = DEMO["epochs"], crop_seconds: float = DEMO["crop_seconds"],
                           mix_rule: str = DEMO["mix_rule"], crop_rule: str = DEMO["crop_rule"],
                           mix_seed: int = DEMO["mix_seed"]) -> dict:
    """Training mixtures per epoch and the test mixtures; their draws follow ``mix_seed`` (-1: ``seed``)."""
    check_mix_rule(mix_rule)
    check_own_seed("mix_seed", mix_seed)
    check_crop_rule(crop_rule)
    check_positive("epochs", epochs, integer=True)
    check_positive("crop_seconds", crop_seconds)
    check_seed("seed", seed)
    seed = seed_of(seed, mix_seed)
    splits = read_table(splits_path, "the splits table", SPLITS_COLUMNS)
    crop = int(round(crop_seconds * SAMPLE_RATE))
    clips = ClipStore(dataset_dir)  # read only by crop_rule="loud"
    train = splits["split"] == "train"
    if is_musdb(splits):
        check_crop_fits(crop_seconds, dict(zip(splits.loc[train, "filename"], splits.loc[train, "samples"])),
                        SAMPLE_RATE, "training track")
        train_mix, test_mix = simulate_stem_mixtures(splits, int(seed), int(epochs), crop, crop_rule, clips)
    else:
        lengths = {f: clip_frames(dataset_dir, f) for f in splits["filename"]}
        check_crop_fits(crop_seconds, {f: lengths[f] for f in splits.loc[train, "filename"]}, SAMPLE_RATE)
        if crop_rule == "loud":
            clips.preload(splits.loc[splits["split"] == "train", "filename"])
        train_mix, test_mix = simulate_mixtures(splits, lengths, int(seed), int(epochs), crop, crop_rule, clips)
    validation_mix = simulate_validation_mixtures(splits, int(seed)) if (splits["split"] == "validation").any() \
        else None
    info = {"mix_rule": mix_rule, "crop_rule": crop_rule,
            "mixture": "track's own mixture" if is_musdb(splits) else "target + interferer",
            "seed": int(seed), "epochs": int(epochs), "crop_samples": crop,
            "sample_rate": SAMPLE_RATE, "n_train_per_epoch": int(len(train_mix) // max(int(epochs), 1)),
            "n_test": int(len(test_mix)), "n_validation": int(len(validation_mix)) if validation_mix is not None else 0}
    with atomic_path(out_mixtures) as tmp:
        tmp.mkdir()
        train_mix.to_csv(tmp / "train_mixtures.csv", index=False)
        test_mix.to_csv(tmp / "test_mixtures.csv", index=False)
        if validation_mix is not None:
            validation_mix.to_csv(tmp / VALIDATION_MIXTURES, index=False)
        (tmp / MIXING).write_text(json.dumps(info, indent=2))
    log.info("mixtures: %d training (%d epochs, %s crops), %d test, rule %s", len(train_mix), epochs, crop_rule,
             len(test_mix), mix_rule)
    return info
