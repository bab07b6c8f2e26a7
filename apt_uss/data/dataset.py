"""The dataset artifact: ESC-50 layout (``audio/*.wav``, ``meta/esc50.csv``) plus a manifest."""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import soundfile as sf

from apt_uss.data import debian_sounds, musdb, synthetic
from apt_uss.data.archive import extract_archive, find_layout_root
from apt_uss.data.audio import (
    CONVERSION,
    SAMPLE_RATE,
    is_silent,
    read_audio,
    to_model_format,
)
from apt_uss.errors import AptUssError
from apt_uss.io.atomic import atomic_path
from apt_uss.io.download import cache_dir, fetch_uri, sha256_file
from apt_uss.io.uris import redact, uri_path
from apt_uss.params.checks import check_dataset, check_sha256

log = logging.getLogger(__name__)

ESC50_URL = "https://github.com/karolpiczak/ESC-50/archive/master.zip"
META = Path("meta") / "esc50.csv"
MANIFEST = "dataset.json"
REQUIRED_COLUMNS = ("filename", "fold", "target", "category")


def is_musdb(meta: pd.DataFrame) -> bool:
    """Stem datasets carry each example's own mixture; event datasets are mixed from pairs."""
    return "mixture" in meta.columns


def load_metadata(dataset_dir: str | Path) -> pd.DataFrame:
    if (Path(dataset_dir) / musdb.META).is_file():
        return pd.read_csv(Path(dataset_dir) / musdb.META, keep_default_na=False)
    path = Path(dataset_dir) / META
    if not path.is_file():
        raise AptUssError(f"dataset at {dataset_dir} has no {META}: expected ESC-50's layout")
    meta = pd.read_csv(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in meta.columns]
    if missing:
        raise AptUssError(f"{path} lacks column(s) {', '.join(missing)}: need {', '.join(REQUIRED_COLUMNS)}")
    for column in ("fold", "target"):
        if not pd.api.types.is_integer_dtype(meta[column]):
            bad = meta.loc[pd.to_numeric(meta[column], errors="coerce").isna(), "filename"].head(3).tolist()
            raise AptUssError(f"{path}: column {column!r} must hold integers (bad rows: {', '.join(map(str, bad))})")
    return meta


def find_esc50_root(folder: Path) -> Path:
    """The folder holding ``meta/esc50.csv``: ``folder`` itself or one or two levels down (archives add one)."""
    return find_layout_root(folder, lambda d: (d / META).is_file(),
                            f"no {META} found in {{folder}} or the two levels below: expected ESC-50's layout")


def _ingest_esc50_directory(source: Path, out: Path) -> tuple[pd.DataFrame, dict]:
    meta = load_metadata(source)
    (out / "audio").mkdir(parents=True)
    (out / "meta").mkdir(parents=True)
    rates, silent = Counter(), []
    started = time.monotonic()
    for i, name in enumerate(meta["filename"], 1):
        path = source / "audio" / name
        if not path.is_file():
            raise AptUssError(f"{source / META} lists {name}, but {path} does not exist")
        audio, sr = read_audio(path)
        rates[f"{sr} Hz x {audio.shape[1]} ch"] += 1
        mono = to_model_format(audio, sr)
        if is_silent(mono):
            silent.append(name)
        sf.write(out / "audio" / name, mono, SAMPLE_RATE, subtype="FLOAT")
        if i % 100 == 0 or i == len(meta):
            log.info("ingest: %d/%d clips (%.1f clips/s)", i, len(meta), i / (time.monotonic() - started))
    meta["silent"] = meta["filename"].isin(silent)
    meta.to_csv(out / META, index=False)
    if silent:
        log.warning("%d silent clip(s) kept out of training and test targets: %s", len(silent), ", ".join(silent[:5]))
    return meta, {"source_formats": dict(sorted(rates.items())), "silent_clips": silent}


def _ingest(uri: str, sha256: str, staged: Path, find_root, ingest) -> tuple[pd.DataFrame, dict]:
    """Ingest from a local directory, or from an archive fetched by URI and extracted safely."""
    local = uri_path(uri)
    if local is not None and not local.exists():
        raise AptUssError(f"dataset_uri={uri!r} does not exist: give a folder in the dataset's layout or an archive "
                          "(path, file://, https://, s3://)")
    if local is not None and local.is_dir():
        root = find_root(local)
        meta, info = ingest(root, staged)
        return meta, dict(info, sha256=None, fingerprint=content_fingerprint(root))
    archive = fetch_uri(uri, sha256=sha256, what="dataset_uri")
    digest = sha256 or sha256_file(archive)
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="extract-", dir=cache) as tmp:
        extract_archive(archive, tmp)
        meta, info = ingest(find_root(Path(tmp)), staged)
    return meta, dict(info, sha256=digest.lower(), fingerprint=digest.lower())


def content_fingerprint(folder: Path) -> str:
    """sha256 over every file of a folder (relative path and bytes, in path order), the dataset manifest left
    out: two runs on one fingerprint read the same source files."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.name != MANIFEST):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def fetch_dataset(dataset: str, out_dir: str | Path, dataset_uri: str = "", n_classes: int = 10,
                  seed: int = 0, dataset_sha256: str = "", processes: int = 1) -> dict:
    """Produce the dataset artifact at ``out_dir`` and return its manifest.

    ``synthetic`` generates the seeded ESC-50-shaped set. ``debian_sounds`` ingests the real-audio
    corpus ``make corpus`` built (or ``dataset_uri``: a copy of its archive). ``esc50`` ingests ESC-50 (by
    default the official archive; else ``dataset_uri``: an https/s3/file archive or a
    local directory in ESC-50's layout). ``musdb18`` ingests MUSDB18 (.stem.mp4) or
    MUSDB18-HQ (wav) from ``dataset_uri``. Audio is converted once to 32 kHz mono float. ``processes``: how many
    write the synthetic set (``write_synthetic_dataset``).
    """
    check_dataset(dataset)
    dataset_sha256 = check_sha256(dataset_sha256)
    with atomic_path(out_dir) as staged:
        if dataset == "synthetic":
            staged.mkdir(parents=True)
            meta = synthetic.write_synthetic_dataset(staged, n_classes=n_classes, seed=seed, processes=processes)
            source = f"synthetic://?n_classes={n_classes}&seed={seed}"
            info = {"sha256": None, "source_formats": {f"{SAMPLE_RATE} Hz x 1 ch": len(meta)}, "silent_clips": [],
                    "fingerprint": content_fingerprint(staged)}  # numpy synthesis, 16-bit files: reproducible
        elif dataset == "debian_sounds":
            source = dataset_uri or str(debian_sounds.built_archive())
            meta, info = _ingest(source, dataset_sha256, staged, find_esc50_root, _ingest_esc50_directory)
        elif dataset == "esc50":
            source = dataset_uri or ESC50_URL
            meta, info = _ingest(source, dataset_sha256, staged, find_esc50_root, _ingest_esc50_directory)
        else:
            if not dataset_uri:
                raise AptUssError("dataset=musdb18 needs dataset_uri: a MUSDB18 or MUSDB18-HQ root folder "
                                  "or archive (https://, s3://, file://); MUSDB18 is not freely downloadable")
            source = dataset_uri
            meta, info = _ingest(source, dataset_sha256, staged, musdb.find_musdb_root, musdb.ingest_musdb)
        part = "subset" if is_musdb(meta) else "fold"
        counts = meta.groupby(["category", part]).size()
        manifest = {
            "dataset": dataset,
            "source_uri": redact(source),
            "sha256": info["sha256"],
            "sample_rate": SAMPLE_RATE,
            "channels": 1,
            "conversion": CONVERSION,
            "source_formats": info["source_formats"],
            "n_clips": int(len(meta)),
            "n_classes": int(meta["target"].nunique()),
            "n_silent": len(info["silent_clips"]),
            # What the data is, for provenance: the source archive's sha256, or the source folder's (or the
            # synthetic set's) content digest. Not the converted audio: resampling is not bit-reproducible.
            "fingerprint": info["fingerprint"],
            **({"tracks": info["tracks"], "layout": info["layout"]} if "tracks" in info else {}),
            "silent_clips": info["silent_clips"],
            f"clips_per_class_and_{part}": {
                cat: {str(f): int(n) for f, n in counts[cat].items()} for cat in sorted(meta["category"].unique())
            },
        }
        (staged / MANIFEST).write_text(json.dumps(manifest, indent=2))
    log.info("dataset %s: %d clips, %d classes -> %s", dataset, manifest["n_clips"], manifest["n_classes"], out_dir)
    return manifest
