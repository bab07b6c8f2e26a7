"""A seeded synthetic sound-event dataset laid out exactly like ESC-50.

Each class is a sound "recipe" (tonal, noise band, pulse train, chirp or buzz) with
class-level parameters drawn from the seed; each clip re-draws its own variation of
those parameters (pitch, band, event count, timing, level). Class bands are wide and
drawn from the same 150 Hz - 8 kHz range, so classes overlap in frequency and a
separator cannot solve the task with a fixed filter.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from apt_uss.data.streams import stream
from apt_uss.errors import AptUssError

log = logging.getLogger(__name__)

KINDS = ("tonal", "noise", "pulses", "chirp", "buzz")
SAMPLE_RATE = 32000
CLIP_SECONDS = 5.0
FOLDS = 5
CLIPS_PER_FOLD = 8
MAX_CLASSES = 50
MAX_WORKERS = 4  # processes writing a synthetic set at once: each holds about 130 MB (a fetch pod requests 1 GiB)


def _class_recipe(rng: np.random.Generator, index: int) -> dict:
    kind = KINDS[index % len(KINDS)]
    centre = float(np.exp(rng.uniform(np.log(250.0), np.log(5000.0))))
    return {
        "kind": kind,
        "centre_hz": centre,
        "octaves": float(rng.uniform(0.8, 2.0)),  # band width: wide, so classes overlap
        "f0_hz": float(np.exp(rng.uniform(np.log(90.0), np.log(700.0)))),
        "rolloff": float(rng.uniform(0.5, 1.6)),
        "rate_hz": float(rng.uniform(2.0, 14.0)),
        "event_s": float(rng.uniform(0.25, 1.6)),
        "attack_s": float(rng.uniform(0.003, 0.15)),
        "sweep_octaves": float(rng.uniform(-1.5, 1.5)),
        "noise_mix": float(rng.uniform(0.2, 0.6)),
    }


def class_recipe(seed: int, target: int) -> dict:
    """The recipe of evaluation class ``target`` in the dataset made with ``seed``."""
    return _class_recipe(stream("dataset_class", seed, target), target)


def _band_noise(rng, n, sr, lo, hi):
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    centre = np.sqrt(lo * hi)
    width = max(np.log2(hi / lo) / 2.0, 0.1)
    gain = np.exp(-0.5 * (np.log2(np.maximum(freqs, 1.0) / centre) / width) ** 2)
    out = np.fft.irfft(spec * gain, n)
    return out / (np.std(out) + 1e-9)


def _harmonics(f0_track, sr, rolloff, max_hz, rng):
    phase = 2 * np.pi * np.cumsum(f0_track) / sr
    out = np.zeros_like(phase)
    for h in range(1, 40):
        if f0_track.max() * h > max_hz:
            break
        out += np.sin(h * phase + rng.uniform(0, 2 * np.pi)) / h**rolloff
    return out / (np.std(out) + 1e-9)


def _event(recipe: dict, rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    jitter = float(np.exp(rng.normal(0.0, 0.12)))
    centre = recipe["centre_hz"] * jitter
    half = 2 ** (recipe["octaves"] * float(np.exp(rng.normal(0.0, 0.1))) / 2)
    lo, hi = max(centre / half, 60.0), min(centre * half, sr / 2 - 500)
    kind = recipe["kind"]
    if kind in ("tonal", "buzz"):
        f0 = recipe["f0_hz"] * jitter
        vibrato = 1 + 0.02 * rng.uniform(0.2, 1.0) * np.sin(2 * np.pi * rng.uniform(3, 7) * t)
        sig = _harmonics(f0 * vibrato, sr, recipe["rolloff"], hi, rng)
        if kind == "buzz":
            mix = recipe["noise_mix"]
            sig = (1 - mix) * sig + mix * _band_noise(rng, n, sr, lo, hi)
    elif kind == "noise":
        am = 1 + 0.6 * np.sin(2 * np.pi * recipe["rate_hz"] * jitter * t + rng.uniform(0, 6.3))
        sig = _band_noise(rng, n, sr, lo, hi) * am
    elif kind == "pulses":
        period = max(int(sr / (recipe["rate_hz"] * jitter)), 1)
        train = np.zeros(n)
        train[rng.integers(0, period) :: period] = 1.0
        decay = np.exp(-np.arange(int(0.03 * sr)) / (0.004 * sr))
        burst = np.convolve(train, decay)[:n]
        sig = burst * _band_noise(rng, n, sr, lo, hi)
    else:  # chirp
        sweep = recipe["sweep_octaves"] * float(np.exp(rng.normal(0.0, 0.15)))
        f_track = centre * 2 ** (sweep * (t / max(t[-1], 1e-3) - 0.5))
        phase = 2 * np.pi * np.cumsum(f_track) / sr
        sig = np.sin(phase) + 0.3 * np.sin(2 * phase)
    attack = max(int(recipe["attack_s"] * sr), 1)
    env = np.minimum(1.0, np.arange(n) / attack) * np.exp(-3.0 * t / max(t[-1], 1e-3))
    return sig * env


def synth_clip(recipe: dict, rng: np.random.Generator, sr: int, seconds: float) -> np.ndarray:
    n = int(round(sr * seconds))
    clip = np.zeros(n)
    for _ in range(int(rng.integers(1, 5))):
        dur = recipe["event_s"] * float(np.exp(rng.normal(0.0, 0.3)))
        length = int(min(max(dur, 0.08), seconds) * sr)
        start = int(rng.integers(0, max(n - length, 1)))
        clip[start : start + length] += _event(recipe, rng, length, sr) * rng.uniform(0.4, 1.0)
    clip += 0.003 * rng.standard_normal(n)  # faint floor: no clip is digital silence
    clip *= 10 ** (rng.uniform(-6, 0) / 20) * 0.25 / (np.sqrt(np.mean(clip**2)) + 1e-9)
    peak = np.abs(clip).max()
    if peak > 0.99:
        clip *= 0.99 / peak
    return clip.astype(np.float32)


def _write_class(job: tuple) -> list[dict]:
    """Write the clips of one class (``job``: out folder, dataset seed, class, sample rate, clip seconds); their
    metadata rows."""
    out, seed, target, sample_rate, clip_seconds = job
    recipe = class_recipe(seed, target)
    category = f"{recipe['kind']}_{target:02d}"
    rows = []
    for k in range(FOLDS * CLIPS_PER_FOLD):
        fold = k // CLIPS_PER_FOLD + 1
        audio = synth_clip(recipe, stream("dataset_clip", seed, target, k), sample_rate, clip_seconds)
        clip_id = 100000 + target * 1000 + k
        name = f"{fold}-{clip_id}-A-{target}.wav"
        sf.write(Path(out) / "audio" / name, audio, sample_rate, subtype="PCM_16")
        rows.append({"filename": name, "fold": fold, "target": target, "category": category,
                     "esc10": False, "src_file": clip_id, "take": "A"})
    return rows


def write_synthetic_dataset(
    out_dir: str | Path,
    n_classes: int = 10,
    seed: int = 0,
    sample_rate: int = SAMPLE_RATE,
    clip_seconds: float = CLIP_SECONDS,
    processes: int = 1,
) -> pd.DataFrame:
    """Write ``audio/*.wav`` and ``meta/esc50.csv`` in ESC-50's layout and return the metadata.

    40 clips per class (5 folds x 8), filenames ``{fold}-{clip}-A-{target}.wav``.
    The same seed gives byte-identical audio, however many ``processes`` write it (up to ``MAX_WORKERS``, one class
    each at a time). More than one starts worker processes by ``spawn``, which imports the caller's main module
    again: a script calling this at its top level needs an ``if __name__ == "__main__"`` guard; where a worker
    cannot start or dies, the set is written in this process instead.
    """
    if not 2 <= int(n_classes) <= MAX_CLASSES:
        raise AptUssError(
            f"n_classes={n_classes!r} is not valid: use 2 to {MAX_CLASSES} (mixtures need two classes)"
        )
    out = Path(out_dir)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    (out / "meta").mkdir(parents=True, exist_ok=True)
    total = n_classes * FOLDS * CLIPS_PER_FOLD
    workers = max(1, min(int(processes), MAX_WORKERS, int(n_classes)))
    jobs = [(out, seed, target, sample_rate, clip_seconds) for target in range(n_classes)]
    if workers > 1:
        try:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                return _write_meta(out, _write_classes(pool.map(_write_class, jobs), total, workers))
        except BrokenProcessPool as exc:  # a worker could not start (no main guard) or was killed (memory)
            log.warning("synthetic dataset: a worker process failed (%s); writing the set in this process", exc)
    return _write_meta(out, _write_classes(map(_write_class, jobs), total, 1))


def _write_classes(class_rows, total: int, workers: int) -> list[dict]:
    """The rows of every class as they are written, with a progress line per class."""
    rows = []
    started = time.monotonic()
    # Every clip draws from its own stream: the files are the same however many processes write them.
    for done, written in enumerate(class_rows, 1):
        rows += written
        clips = done * FOLDS * CLIPS_PER_FOLD
        log.info("synthetic dataset: %d/%d clips (%.0f clips/s, %d process%s)", clips, total,
                 clips / max(time.monotonic() - started, 1e-6), workers, "es" if workers > 1 else "")
    return rows


def _write_meta(out: Path, rows: list[dict]) -> pd.DataFrame:
    meta = pd.DataFrame(rows)
    meta.to_csv(out / "meta" / "esc50.csv", index=False)
    return meta
