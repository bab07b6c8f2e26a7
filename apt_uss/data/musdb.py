"""MUSDB18 and MUSDB18-HQ: ingestion through the ``musdb`` package, the official split, stem mixtures.

The targets are the four stems; a training or test example is one stem of a track with
the track's own mixture as input. The dataset artifact keeps every track as 32 kHz mono
files ``audio/<subset>/<track>/<stem>.wav`` and ``mixture.wav``, listed one row per stem
in ``meta/musdb18.csv``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from apt_uss.data.archive import find_layout_root
from apt_uss.data.audio import SAMPLE_RATE, is_silent, to_model_format
from apt_uss.data.mixtures import crop_offsets
from apt_uss.data.streams import stream
from apt_uss.errors import AptUssError

log = logging.getLogger(__name__)

STEMS = ("vocals", "drums", "bass", "other")
META = Path("meta") / "musdb18.csv"
COLUMNS = ("filename", "track", "subset", "target", "category", "mixture", "samples", "silent")
OFFICIAL_TRACKS = {"train": 100, "test": 50}
TEST_SEGMENT_SECONDS = 2.0  # the reference protocol scores 2-s segments, whatever the training crops' length


def find_musdb_root(folder: Path) -> Path:
    """The folder holding ``train/`` and ``test/``: ``folder`` or up to two levels down."""
    return find_layout_root(folder, lambda d: (d / "train").is_dir() and (d / "test").is_dir(),
                            "no MUSDB18 layout (train/ and test/ folders) in {folder} or the two levels below")


def _load(source, what: str) -> tuple[np.ndarray, int]:
    try:
        audio = np.asarray(source.audio, dtype=np.float32)
    except Exception as exc:  # soundfile and stempeg/ffmpeg fail in many ways on bad files
        raise AptUssError(f"{what} is not readable audio: {str(exc).strip().splitlines()[0][:200]}") from None
    if audio.ndim == 1:
        audio = audio[:, None]
    return audio, int(source.rate)


def ingest_musdb(root: Path, out: Path) -> tuple[pd.DataFrame, dict]:
    """Convert every track to 32 kHz mono stems + mixture; returns (metadata, info for the manifest)."""
    import musdb

    is_wav = any(root.glob("*/*/mixture.wav"))
    db = musdb.DB(root=str(root), is_wav=is_wav, subsets=["train", "test"])
    if not db.tracks:
        raise AptUssError(f"{root}: no MUSDB18 tracks found (expected {'wav folders' if is_wav else '.stem.mp4 files'})")
    rows, formats, silent = [], {}, []
    started = time.monotonic()
    for i, track in enumerate(db.tracks, 1):
        folder = Path("audio") / track.subset / track.name
        (out / folder).mkdir(parents=True)
        mixture, sr = _load(track, f"{track.subset}/{track.name} mixture")
        key = f"{sr} Hz x {mixture.shape[1]} ch"
        formats[key] = formats.get(key, 0) + 1
        mono = to_model_format(mixture, sr)
        sf.write(out / folder / "mixture.wav", mono, SAMPLE_RATE, subtype="FLOAT")
        for index, stem in enumerate(STEMS):
            if stem not in track.sources:
                raise AptUssError(f"{track.subset}/{track.name} has no {stem} stem")
            audio, stem_sr = _load(track.sources[stem], f"{track.subset}/{track.name} {stem}")
            stem_mono = to_model_format(audio, stem_sr)
            if len(stem_mono) != len(mono):
                raise AptUssError(f"{track.subset}/{track.name}: {stem} has {len(stem_mono)} samples, "
                                  f"the mixture {len(mono)}")
            sf.write(out / folder / f"{stem}.wav", stem_mono, SAMPLE_RATE, subtype="FLOAT")
            name = str(folder.relative_to("audio") / f"{stem}.wav")
            if is_silent(stem_mono):
                silent.append(name)
            rows.append({"filename": name, "track": track.name, "subset": track.subset, "target": index,
                         "category": stem, "mixture": str(folder.relative_to("audio") / "mixture.wav"),
                         "samples": len(mono), "silent": is_silent(stem_mono)})
        log.info("ingest: %d/%d tracks (%.2f tracks/s)", i, len(db.tracks), i / (time.monotonic() - started))
    meta = pd.DataFrame(rows, columns=list(COLUMNS))
    (out / "meta").mkdir(parents=True, exist_ok=True)
    meta.to_csv(out / META, index=False)
    counts = meta.drop_duplicates("track").groupby("subset").size().to_dict()
    for subset, official in OFFICIAL_TRACKS.items():
        if counts.get(subset, 0) != official:
            log.warning("MUSDB18 %s subset has %d tracks (the official release has %d)",
                        subset, counts.get(subset, 0), official)
    return meta, {"source_formats": formats, "silent_clips": silent, "tracks": counts,
                  "layout": "wav" if is_wav else "stems"}


def split_tracks(meta: pd.DataFrame, n_shot: int | None, seed: int) -> pd.DataFrame:
    """The first ``n_shot`` training tracks of a seeded permutation (nested as n grows), all test tracks."""
    train_tracks = sorted(meta.loc[meta["subset"] == "train", "track"].unique())
    if not train_tracks or not (meta["subset"] == "test").any():
        raise AptUssError("MUSDB18 needs tracks in both the train and the test subset")
    if n_shot is not None and n_shot > len(train_tracks):
        raise AptUssError(f"n_shot={n_shot} is larger than the {len(train_tracks)} MUSDB18 training tracks: "
                          f"use 1 to {len(train_tracks)} or 'full'")
    order = [train_tracks[i] for i in stream("musdb_tracks", seed).permutation(len(train_tracks))]
    chosen = order[: n_shot if n_shot is not None else len(order)]
    rank = {t: r for r, t in enumerate(chosen)}
    train = meta[meta["track"].isin(chosen) & (meta["subset"] == "train")].copy()
    train["shot_rank"] = train["track"].map(rank)
    train = train.sort_values(["shot_rank", "target"])
    test = meta[meta["subset"] == "test"].sort_values(["track", "target"]).assign(shot_rank=-1)
    out = pd.concat([train.assign(split="train"), test.assign(split="test")], ignore_index=True)
    return out[~out["silent"].astype(bool)].reset_index(drop=True)


def simulate_stem_mixtures(splits: pd.DataFrame, seed: int, epochs: int, crop_samples: int,
                           crop_rule: str = "random", clips=None):
    """(training, test) tables: the mixture is the track's own; the target one of its stems.

    Training: each epoch, every training stem once, at a ``crop_samples`` crop (2 s in the paper) shared by stem
    and mixture that starts by ``crop_rule`` (``crop_offsets``: "loud" reads the stems from ``clips``).
    Test: every non-overlapping 2-s segment (``TEST_SEGMENT_SECONDS``) of every test stem (the reference's
    protocol: per-track median over segments, then median over tracks).
    """
    def base(rows: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({
            "target_file": rows["filename"].to_numpy(), "target": rows["target"].to_numpy(),
            "target_class": rows["category"].to_numpy(), "interferer_file": rows["mixture"].to_numpy(),
            "interferer": -1, "interferer_class": "mixture", "mixture_file": rows["mixture"].to_numpy(),
            "track": rows["track"].to_numpy(),
        })

    train = splits[splits["split"] == "train"].reset_index(drop=True)
    tables = []
    for epoch in range(int(epochs)):
        rng = stream("musdb_mixtures", seed, epoch)
        order = train.iloc[rng.permutation(len(train))].reset_index(drop=True)
        table = base(order)
        table["target_offset"] = crop_offsets(rng, order["filename"], order["samples"].to_numpy(), crop_samples,
                                              crop_rule, clips)
        table["length"] = crop_samples
        table.insert(0, "epoch", epoch)
        tables.append(table)
    train_mix = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()

    test = splits[splits["split"] == "test"].reset_index(drop=True)
    segment = int(TEST_SEGMENT_SECONDS * SAMPLE_RATE)
    segments = test.loc[test.index.repeat(np.maximum(test["samples"] // segment, 0))]
    test_mix = base(segments)
    index = segments.groupby(level=0).cumcount().to_numpy()
    test_mix["target_offset"] = index * segment
    test_mix["length"] = segment
    test_mix.insert(0, "mixture_id", [f"test-{i:06d}" for i in range(len(test_mix))])
    return train_mix, test_mix
