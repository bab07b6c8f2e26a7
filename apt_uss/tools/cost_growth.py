"""How the cost of a run grows: prompt tuning and evaluation time against classes, shots, epochs
and clip length, each measured at three sizes around the default demo run, and what the measured
rates predict for the paper's ESC-50 protocol.

``python -m apt_uss.tools.bench --only growth`` runs it (``make bench`` includes it). Each size is
one real ``tune_prompts`` call and one real ``evaluate_prompts`` call (separation, SDR, oracle mask,
SI-SDR) on seeded tone-under-noise clips: the time does not depend on what the clips sound like.
Tuning draws 2-s crops, so a step's cost does not depend on the clip length; evaluation separates
whole clips, so its cost does not depend on shots or epochs (those rows reuse the centre's figure
and say so).
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd
import torch

from apt_uss.evaluation.evaluate import evaluate_prompts
from apt_uss.method.tuning import tune_prompts
from apt_uss.models.backbone import load_backbone

# The default demo run: 10 classes, 5 shots, 20 epochs, 5-s clips, 16 test clips per class
# (ESC-50's folds 4-5 hold 16 clips of each class), batch 4, 2-s crops.
CENTRE = {"classes": 10, "shots": 5, "epochs": 20, "clip_seconds": 5.0}
SIZES = {"classes": (5, 10, 20), "shots": (1, 5, 10), "epochs": (5, 10, 20), "clip_seconds": (2.5, 5.0, 10.0)}
TEST_CLIPS_PER_CLASS = 16
BATCH_SIZE = 4
CROP_SECONDS = 2.0
# What tuning and evaluation cost depends on: evaluation is the same for every shot and epoch count.
EVALUATION_DEPENDS_ON = ("classes", "clip_seconds")

# The paper's ESC-50 protocol (Table 2): 50 classes, folds 1-3 train (24 clips a class), folds 4-5
# test (16 a class, one mixture each), 100 epochs, 5-s clips, two systems scored (baseline and APT).
PAPER_PROTOCOLS = {
    "ESC-50, 5 shots": {"classes": 50, "shots": 5, "epochs": 100, "clip_seconds": 5.0},
    "ESC-50, full data (24 clips a class)": {"classes": 50, "shots": 24, "epochs": 100, "clip_seconds": 5.0},
}


def say(message: str) -> None:
    """Benchmark progress: on stderr, so stdout keeps only the tables."""
    print(message, file=sys.stderr, flush=True)


def tone_clips(classes: int, clips_per_class: int, clip_seconds: float, sr: int,
               rng: np.random.Generator) -> tuple[dict[str, np.ndarray], list[tuple[str, int]]]:
    """Seeded benchmark clips: a tone per class (110 Hz x (class + 1), random phase) under white noise.

    Returns the clips by file name and the (file, class) pairs in class order. What they sound like
    does not change what tuning or evaluation costs; the benchmarks only need a separable problem.
    """
    n = int(clip_seconds * sr)
    t = np.arange(n) / sr
    clips, files = {}, []
    for c in range(classes):
        for k in range(clips_per_class):
            name = f"class{c}_{k}.wav"
            tone = np.sin(2 * np.pi * 110 * (c + 1) * t + rng.uniform(0, 2 * np.pi))
            clips[name] = (0.2 * tone + 0.02 * rng.standard_normal(n)).astype(np.float32)
            files.append((name, c))
    return clips, files


def tuning_steps(classes: int, shots: int, epochs: int, batch_size: int = BATCH_SIZE) -> int:
    """Each training clip is the target of one mixture an epoch: ceil(classes x shots / batch) steps an epoch."""
    return epochs * -(-classes * shots // batch_size)


def test_mixtures(classes: int, test_clips_per_class: int = TEST_CLIPS_PER_CLASS) -> int:
    return classes * test_clips_per_class


def _problem(classes: int, shots: int, epochs: int, clip_seconds: float, sr: int, seed: int = 0):
    """Clips (a tone per class under noise), a training table (each training clip the target once an
    epoch, against a clip of another class, random 2-s crops) and a test table (each test clip the
    target of one whole-clip mixture)."""
    rng = np.random.default_rng(seed)
    n = int(clip_seconds * sr)
    crop = min(int(CROP_SECONDS * sr), n)
    clips, files = tone_clips(classes, shots + TEST_CLIPS_PER_CLASS, clip_seconds, sr, rng)
    rows = {"train": [], "test": []}
    for i, (name, c) in enumerate(files):
        rows["train" if i % (shots + TEST_CLIPS_PER_CLASS) < shots else "test"].append((name, c))
    train_files = pd.DataFrame(rows["train"], columns=["file", "target"])
    train = []
    for epoch in range(epochs):
        for i in rng.permutation(len(train_files)):
            target = train_files.iloc[i]
            others = train_files[train_files["target"] != target["target"]]
            other = others.iloc[int(rng.integers(len(others)))]
            train.append(dict(epoch=epoch, target_file=target["file"], target=int(target["target"]),
                              interferer_file=other["file"], interferer=int(other["target"]),
                              target_offset=int(rng.integers(n - crop + 1)),
                              interferer_offset=int(rng.integers(n - crop + 1))))
    test = []
    for i, (name, c) in enumerate(rows["test"]):
        j = int(rng.integers(len(rows["test"])))
        while rows["test"][j][1] == c:
            j = int(rng.integers(len(rows["test"])))
        test.append(dict(mixture_id=i, target_class=f"class{c}", interferer_class=f"class{rows['test'][j][1]}",
                         target_file=name, interferer_file=rows["test"][j][0], target=c, interferer=rows["test"][j][1]))
    return clips, pd.DataFrame(train), pd.DataFrame(test), crop


def measure_size(separator, dim: int, sr: int, size: dict, evaluate: bool, seed: int = 0) -> dict:
    """Time one ``tune_prompts`` and, when ``evaluate``, one ``evaluate_prompts`` at ``size``."""
    clips, train, test, crop = _problem(size["classes"], size["shots"], size["epochs"], size["clip_seconds"], sr, seed)
    initial = (0.1 * np.random.default_rng(seed).standard_normal((size["classes"], dim))).astype(np.float32)
    targets = np.arange(size["classes"])
    started = time.perf_counter()
    tuned, _ = tune_prompts(separator, initial, targets, train, clips, "energy_match", crop, lr=1e-2,
                            batch_size=BATCH_SIZE)
    row = {**size, "tuning_steps": tuning_steps(size["classes"], size["shots"], size["epochs"]),
           "tuning_seconds": time.perf_counter() - started, "test_mixtures": len(test)}
    row["seconds_per_step"] = row["tuning_seconds"] / row["tuning_steps"]
    if evaluate:
        started = time.perf_counter()
        evaluate_prompts(separator, test, clips, tuned, targets, "energy_match")
        row["evaluation_seconds"] = time.perf_counter() - started
        row["seconds_per_mixture"] = row["evaluation_seconds"] / row["test_mixtures"]
    return row


def measure_growth(config: str = "demo", sizes: dict | None = None, centre: dict | None = None) -> list[dict]:
    """One row per (dimension, size): the centre's row is measured once and shared by every dimension."""
    sizes, centre = sizes or SIZES, centre or CENTRE
    backbone = load_backbone(config)
    separator, dim, sr = backbone.separator, backbone.cfg.embed_dim, backbone.cfg.sample_rate
    # A short warm-up so the first timed size does not pay oneDNN's first-call set-up.
    measure_size(separator, dim, sr, {"classes": 2, "shots": 1, "epochs": 1, "clip_seconds": 2.5}, evaluate=True)
    centre_key = tuple(sorted(centre.items()))
    measured = {centre_key: measure_size(separator, dim, sr, centre, evaluate=True)}
    planned = [(d, v) for d in sizes for v in sizes[d]]
    rows, started = [], time.perf_counter()
    for i, (dimension, value) in enumerate(planned, 1):
        size = {**centre, dimension: value}
        key = tuple(sorted(size.items()))
        if key not in measured:
            measured[key] = measure_size(separator, dim, sr, size, evaluate=dimension in EVALUATION_DEPENDS_ON)
        row = dict(measured[key], varied=dimension)
        if "evaluation_seconds" not in row:  # shots and epochs leave the test set as it is
            row.update(evaluation_seconds=measured[centre_key]["evaluation_seconds"],
                       seconds_per_mixture=measured[centre_key]["seconds_per_mixture"], evaluation_from_centre=True)
        rows.append(row)
        say(f"growth {i}/{len(planned)}: {dimension}={value}: {row['tuning_steps']} steps in "
            f"{row['tuning_seconds']:.1f} s ({row['seconds_per_step']:.3f} s/step), {row['test_mixtures']} test "
            f"mixtures in {row['evaluation_seconds']:.1f} s; {time.perf_counter() - started:.0f} s so far")
    return rows


def fitted_rates(rows: list[dict]) -> dict:
    """Seconds per tuning step (the median over the distinct sizes: steps do not depend on classes, shots
    or epochs) and the evaluation's seconds per mixture as a line in the clip length, fitted by least squares over the
    evaluated sizes: a fixed part (the per-mixture calls, the SED-free set-up) plus a part per second of audio."""
    # The centre's size appears once per varied dimension: fit each measured size once.
    distinct = list({tuple(r.get(k) for k in CENTRE): r for r in rows}.values())
    evaluated = [r for r in distinct if not r.get("evaluation_from_centre")]
    seconds = np.array([r["clip_seconds"] for r in evaluated], dtype=float)
    per_mixture = np.array([r["seconds_per_mixture"] for r in evaluated], dtype=float)
    if len(set(seconds.tolist())) > 1:
        per_second, fixed = np.polyfit(seconds, per_mixture, 1)
    else:  # one clip length measured: no slope to fit, all of it per second of audio
        per_second, fixed = float(np.median(per_mixture / seconds)), 0.0
    return {"seconds_per_step": float(np.median([r["seconds_per_step"] for r in distinct])),
            "evaluation_seconds_per_mixture": float(fixed), "evaluation_seconds_per_audio_second": float(per_second)}


def evaluation_seconds(rates: dict, mixtures: int, clip_seconds: float) -> float:
    per_mixture = rates["evaluation_seconds_per_mixture"] + clip_seconds * rates["evaluation_seconds_per_audio_second"]
    return mixtures * per_mixture


def protocol_estimates(rates: dict, protocols: dict | None = None, systems: int = 2) -> list[dict]:
    """Predicted tuning and evaluation (``systems`` evaluations) time of each protocol at ``rates``."""
    out = []
    for name, p in (protocols or PAPER_PROTOCOLS).items():
        steps = tuning_steps(p["classes"], p["shots"], p["epochs"])
        mixtures = test_mixtures(p["classes"])
        out.append({"protocol": name, **p, "tuning_steps": steps, "test_mixtures": mixtures,
                    "tuning_seconds": steps * rates["seconds_per_step"],
                    "evaluation_seconds": systems * evaluation_seconds(rates, mixtures, p["clip_seconds"])})
    return out


def print_growth(rows: list[dict], config: str, centre: dict | None = None) -> dict:
    print(f"\nHow cost grows ({config} backbone, {torch.get_num_threads()} threads; centre {centre or CENTRE}, "
          f"{TEST_CLIPS_PER_CLASS} test clips a class)")
    print(f"{'varied':13s} {'value':>6s} {'steps':>6s} {'tuning s':>9s} {'s/step':>7s} {'mixtures':>9s} "
          f"{'eval s':>7s} {'s/mixture':>10s}")
    for r in rows:
        shared = " (centre's)" if r.get("evaluation_from_centre") else ""
        print(f"{r['varied']:13s} {r[r['varied']]:6g} {r['tuning_steps']:6d} {r['tuning_seconds']:9.1f} "
              f"{r['seconds_per_step']:7.3f} {r['test_mixtures']:9d} {r['evaluation_seconds']:7.1f} "
              f"{r['seconds_per_mixture']:10.3f}{shared}")
    rates = fitted_rates(rows)
    print(f"fitted: {rates['seconds_per_step']:.3f} s a tuning step; evaluation "
          f"{rates['evaluation_seconds_per_mixture']:.3f} s a mixture + "
          f"{rates['evaluation_seconds_per_audio_second']:.4f} s per second of its audio")
    estimates = protocol_estimates(rates)
    for e in estimates:
        print(f"{e['protocol']}: {e['tuning_steps']} steps, tuning {e['tuning_seconds'] / 60:.0f} min; "
              f"2 x {e['test_mixtures']} test mixtures, evaluation {e['evaluation_seconds'] / 60:.1f} min", flush=True)
    return {"config": config, "centre": centre or CENTRE, "rows": rows, "rates": rates, "paper_protocols": estimates}
