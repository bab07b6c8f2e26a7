"""Prompt tables: initialisation from SED embeddings, and their file format.

A prompt file is an ``.npz`` with ``prompts`` (K, D) float32, ``targets`` (K,) int and
``class_names`` (K,) str, rows in target-id order, and two JSON records: ``provenance`` (what the
weights are: config name and each part's sha256; the dataset's fingerprint) and ``backbone`` (the
backbone's parameters: config and checkpoint URIs, so the prompts can be used again with the backbone
they were tuned for). Numpy's format needs no pickle to read, so prompt files from elsewhere (S3,
colleagues) are safe to load.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from apt_uss.errors import AptUssError
from apt_uss.io.atomic import atomic_path

log = logging.getLogger(__name__)

SEGMENT_SECONDS = 2.0
SEGMENT_ENERGY_THRESHOLD = 0.1  # sum of squares; quieter segments carry no class evidence


def clip_segments(audio: np.ndarray, segment: int) -> np.ndarray:
    """Non-overlapping ``segment``-sample pieces whose energy exceeds the threshold.

    So that every clip yields an embedding: a clip shorter than one segment is used whole (padded), and a clip with
    no loud piece gives its loudest ``segment``-sample window (the sound of a quiet clip may sit across two pieces
    or in the tail the pieces leave out).
    """
    n = len(audio) // segment
    pieces = audio[: n * segment].reshape(n, segment) if n else np.zeros((0, segment), np.float32)
    loud = pieces[(pieces.astype(np.float64) ** 2).sum(axis=1) > SEGMENT_ENERGY_THRESHOLD]
    if len(loud):
        return loud
    if len(audio) < segment:
        return np.pad(audio, (0, segment - len(audio)))[None, :]
    energy = np.concatenate([[0.0], np.cumsum(audio.astype(np.float64) ** 2)])
    starts = np.unique(np.append(np.arange(0, len(audio) - segment + 1, max(1, segment // 16)), len(audio) - segment))
    best = int(starts[np.argmax(energy[starts + segment] - energy[starts])])
    return audio[best : best + segment][None, :]


# Segments a batch of the SED on CUDA, where one clip's two or three 2-s segments leave the GPU idle.
# On CPU each clip is one batch (larger batches fall out of cache there, as the separator's do).
CUDA_SEGMENTS_PER_BATCH = 64


@torch.inference_mode()
def embed_clips(sed, clips, total: int, sample_rate: int, device="cpu",
                segments_per_batch: int | None = None) -> dict[str, np.ndarray]:
    """Per-clip embedding: mean of the SED embeddings of its loud 2-s segments.

    ``clips`` yields (name, audio) pairs, so long recordings are read one at a time.
    ``segments_per_batch`` > 0 runs the SED on up to that many segments at once, several clips'
    together (the default on CUDA, ``CUDA_SEGMENTS_PER_BATCH``); 0 or None on CPU: one clip a batch.
    The SED is in eval mode, so a clip's embedding does not depend on its batch beyond float rounding.
    """
    if segments_per_batch is None:
        segments_per_batch = CUDA_SEGMENTS_PER_BATCH if torch.device(device).type == "cuda" else 0
    if segments_per_batch < 0:
        raise AptUssError(f"segments_per_batch must be >= 0, got {segments_per_batch}")
    segment = int(SEGMENT_SECONDS * sample_rate)
    out: dict[str, np.ndarray] = {}
    pending: list[tuple[str, np.ndarray]] = []  # clips whose segments wait for a full batch
    started, done = time.monotonic(), 0

    def flush() -> None:
        nonlocal done
        if not pending:
            return
        counts = [len(segs) for _, segs in pending]
        batch = torch.from_numpy(np.concatenate([segs for _, segs in pending])).to(device)
        latent = torch.cat([sed(part)["latent_output"] for part in batch.split(segments_per_batch or 64)])
        for (name, _), part in zip(pending, latent.split(counts)):
            out[name] = part.mean(dim=0).float().cpu().numpy()
            done += 1
            if done % 50 == 0 or done == total:
                log.info("embeddings: %d/%d clips (%.1f clips/s)", done, total, done / (time.monotonic() - started))
        pending.clear()

    for name, audio in clips:
        segs = clip_segments(audio, segment)
        if pending and sum(len(p) for _, p in pending) + len(segs) > segments_per_batch:
            flush()
        pending.append((name, segs))
        if not segments_per_batch:
            flush()
    flush()
    return out


def initial_prompts(train: pd.DataFrame, embeddings: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean embedding of each class's training clips: (prompts, targets, class_names)."""
    classes = train[["target", "category"]].drop_duplicates().sort_values("target")
    prompts = np.stack([
        np.mean([embeddings[f] for f in train.loc[train["target"] == t, "filename"]], axis=0)
        for t in classes["target"]
    ]).astype(np.float32)
    return prompts, classes["target"].to_numpy(), classes["category"].to_numpy().astype(str)


def save_prompts(path, prompts: np.ndarray, targets: np.ndarray, class_names: np.ndarray,
                 provenance: dict | None = None, backbone: dict | None = None) -> None:
    """A prompt file; ``provenance`` (the backbone's weights, the dataset's fingerprint) and ``backbone`` (the
    backbone's parameters) ride along as JSON."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, prompts=np.asarray(prompts, np.float32), targets=np.asarray(targets, np.int64),
                     class_names=np.asarray(class_names, dtype=str),
                     provenance=np.asarray(json.dumps(provenance or {}, sort_keys=True)),
                     backbone=np.asarray(json.dumps(backbone or {}, sort_keys=True)))


def _json_record(path, key: str) -> dict:
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            return json.loads(str(data[key])) if key in data.files else {}
    except (OSError, EOFError, ValueError) as exc:
        raise AptUssError(f"{path} is not a prompt or embeddings file: {exc}") from None


def load_prompt_provenance(path) -> dict:
    """The provenance a prompt file records ({} for files from before it was recorded)."""
    return _json_record(path, "provenance")


def load_prompt_backbone(path) -> dict:
    """The backbone parameters a prompt file records ({} for files from before they were recorded)."""
    return _json_record(path, "backbone")


WEIGHT_KEYS = ("backbone", "sed_weights", "separator_weights")


def check_same_backbone(recorded: dict, actual: dict, source: str) -> None:
    """Refuse to use prompts with another backbone than the one they were made with (``recorded`` and ``actual`` are
    provenance records: config name and each part's weights); an old file that records nothing passes."""
    differ = [k for k in WEIGHT_KEYS if k in recorded and recorded[k] != actual.get(k)]
    if differ:
        def describe(p: dict) -> str:
            return f"backbone {p.get('backbone')!r} (SED {p.get('sed_weights')}, separator {p.get('separator_weights')})"

        raise AptUssError(f"the prompts of {source} were made with {describe(recorded)}, not with {describe(actual)}: "
                          "use the backbone they were tuned with (leave the backbone options out to take the one "
                          "the prompt file records)")


def load_prompts(path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            prompts, targets, names = data["prompts"], data["targets"], data["class_names"]
    except (OSError, EOFError, KeyError, ValueError) as exc:  # EOFError: an empty file
        raise AptUssError(f"{path} is not a prompt file (prompts, targets, class_names): {exc}") from None
    if prompts.ndim != 2 or len(prompts) != len(targets) or len(targets) != len(names):
        raise AptUssError(f"{path}: prompts {prompts.shape}, targets {targets.shape} and names {names.shape} disagree")
    return prompts, targets, names


def save_embeddings(path, embeddings: dict[str, np.ndarray], meta: pd.DataFrame, provenance: dict | None = None,
                    backbone: dict | None = None) -> None:
    """Clip embeddings with their file names and class targets (and, like a prompt file, their provenance and
    backbone)."""
    rows = meta.set_index("filename").loc[list(embeddings)]
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, embeddings=np.stack(list(embeddings.values())).astype(np.float32),
                     filenames=np.asarray(list(embeddings), dtype=str),
                     targets=rows["target"].to_numpy().astype(np.int64),
                     provenance=np.asarray(json.dumps(provenance or {}, sort_keys=True)),
                     backbone=np.asarray(json.dumps(backbone or {}, sort_keys=True)))


def load_clip_embeddings(path) -> dict[str, np.ndarray]:
    """File name -> embedding, from a file written by ``save_embeddings``."""
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            return dict(zip(data["filenames"].tolist(), data["embeddings"]))
    except (OSError, EOFError, KeyError, ValueError) as exc:  # EOFError: an empty file
        raise AptUssError(f"{path} is not an embeddings file (embeddings, filenames, targets): {exc}") from None


def prompts_from_embeddings(train: pd.DataFrame, embeddings: dict[str, np.ndarray], source: str = "the embeddings"):
    """``initial_prompts`` from clips embedded beforehand (the sweep embeds every training clip once);
    a training clip without an embedding is an error naming it."""
    missing = sorted(set(train["filename"]) - set(embeddings))
    if missing:
        raise AptUssError(f"{source} lack {len(missing)} training clip(s), e.g. {missing[0]!r}: embed the same "
                          "dataset and training folds")
    return initial_prompts(train, embeddings)


def load_embeddings(path) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings (N, D), class target of each clip (N,)) from a file written by ``save_embeddings``."""
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            embeddings, targets = data["embeddings"], data["targets"]
    except (OSError, EOFError, KeyError, ValueError) as exc:  # EOFError: an empty file
        raise AptUssError(f"{path} is not an embeddings file (embeddings, filenames, targets): {exc}") from None
    if embeddings.ndim != 2 or len(embeddings) != len(targets):
        raise AptUssError(f"{path}: embeddings {embeddings.shape} and targets {targets.shape} disagree")
    return embeddings, targets
