"""The dataset artifact: ESC-50 layout (``audio/*.wav``, ``meta/esc50.csv``) plus a manifest."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from ..atomic import atomic_path
from ..errors import AptUssError
from ..params import check_dataset
from ..uris import local_path
from . import synthetic

log = logging.getLogger(__name__)

SAMPLE_RATE = 32000
META = Path("meta") / "esc50.csv"
MANIFEST = "dataset.json"
REQUIRED_COLUMNS = ("filename", "fold", "target", "category")


def load_metadata(dataset_dir: str | Path) -> pd.DataFrame:
    path = Path(dataset_dir) / META
    if not path.is_file():
        raise AptUssError(f"dataset at {dataset_dir} has no {META}: expected ESC-50's layout")
    meta = pd.read_csv(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in meta.columns]
    if missing:
        raise AptUssError(f"{path} lacks column(s) {', '.join(missing)}: need {', '.join(REQUIRED_COLUMNS)}")
    return meta


def read_clip(dataset_dir: str | Path, filename: str) -> np.ndarray:
    """Read one ingested clip: 32 kHz mono float32."""
    audio, sr = sf.read(Path(dataset_dir) / "audio" / filename, dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE:
        raise AptUssError(f"{filename} is at {sr} Hz: the dataset artifact must be ingested at {SAMPLE_RATE} Hz")
    return audio.mean(axis=1)


def read_clips(dataset_dir: str | Path, filenames) -> dict[str, np.ndarray]:
    return {name: read_clip(dataset_dir, name) for name in dict.fromkeys(filenames)}


def _ingest_esc50_directory(source: Path, out: Path) -> pd.DataFrame:
    import torch
    import torchaudio.functional as AF

    meta = load_metadata(source)
    (out / "audio").mkdir(parents=True)
    (out / "meta").mkdir(parents=True)
    started = time.monotonic()
    for i, name in enumerate(meta["filename"], 1):
        path = source / "audio" / name
        if not path.is_file():
            raise AptUssError(f"{source / META} lists {name}, but {path} does not exist")
        try:
            audio, sr = sf.read(path, dtype="float32", always_2d=True)
        except RuntimeError as exc:
            raise AptUssError(f"{path} is not readable audio: {exc}") from None
        mono = torch.from_numpy(audio.mean(axis=1))
        if sr != SAMPLE_RATE:
            mono = AF.resample(mono, sr, SAMPLE_RATE)  # windowed-sinc, anti-aliased
        sf.write(out / "audio" / name, mono.numpy(), SAMPLE_RATE, subtype="FLOAT")
        if i % 100 == 0 or i == len(meta):
            log.info("ingest: %d/%d clips (%.1f clips/s)", i, len(meta), i / (time.monotonic() - started))
    meta.to_csv(out / META, index=False)
    return meta


def fetch_dataset(
    dataset: str, out_dir: str | Path, dataset_uri: str = "", n_classes: int = 10, seed: int = 0
) -> dict:
    """Produce the dataset artifact at ``out_dir`` and return its manifest.

    ``synthetic`` generates the seeded ESC-50-shaped set; ``esc50`` ingests a local copy in
    ESC-50's layout, converting audio to 32 kHz mono.
    """
    check_dataset(dataset)
    with atomic_path(out_dir) as staged:
        if dataset == "synthetic":
            staged.mkdir(parents=True)
            meta = synthetic.write_synthetic_dataset(staged, n_classes=n_classes, seed=seed)
            source = f"synthetic://?n_classes={n_classes}&seed={seed}"
        else:
            if not dataset_uri:
                raise AptUssError("dataset=esc50 needs dataset_uri: a local directory in ESC-50's layout")
            meta = _ingest_esc50_directory(local_path(dataset_uri, "dataset_uri", directory=True), staged)
            source = dataset_uri
        counts = meta.groupby(["category", "fold"]).size()
        manifest = {
            "dataset": dataset,
            "source_uri": source,
            "sample_rate": SAMPLE_RATE,
            "channels": 1,
            "n_clips": int(len(meta)),
            "n_classes": int(meta["target"].nunique()),
            "clips_per_class_and_fold": {
                cat: {str(f): int(n) for f, n in counts[cat].items()} for cat in sorted(meta["category"].unique())
            },
        }
        (staged / MANIFEST).write_text(json.dumps(manifest, indent=2))
    log.info("dataset %s: %d clips, %d classes -> %s", dataset, manifest["n_clips"], manifest["n_classes"], out_dir)
    return manifest
