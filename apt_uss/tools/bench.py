"""Benchmarks on this machine: ``python -m apt_uss.tools.bench [--only forward sdr tuning] [--json out.json]``.

forward  the SED's and the separator's forward time on one 2-s clip (median of repeats, after a
         warm-up) and their memory: weights, and the peak resident memory of the run
         (``--configs paper small``).
sdr      SDR evaluation throughput: museval (BSS Eval v4, the whole 5-s segment as one window)
         against ``metrics.bss_sdr`` on the same seeded pairs, and their largest difference;
         the bench fails (exit 1) if that reaches 0.01 dB.
tuning   prompt-tuning steps per second through ``tuning.tune_prompts`` after a one-epoch
         warm-up, beside a straightforward loop that leaves the separator's weights trainable
         (``--tuning-configs small demo paper``; ``paper`` on a smaller problem, ``PAPER_SIZES``: its
         separator takes ~2 s per 2-s clip forward on 2 cores, so a batch-4 step takes tens of seconds).
separation  test-mixture separation (5 s) per second through ``evaluation.separate`` (inference
         mode, the BatchNorm-folded frozen separator, as evaluation runs it) beside a straightforward forward with trainable weights and autograd
         on, and the largest difference of their estimates (``--separation-configs demo small paper``).
embedding   SED embedding of 5-s clips per second through ``prompts.embed_clips``; the pipeline
         embeds each training clip once (an artifact) where a straightforward loop would embed
         them again in every tuning epoch: the ratio is the epochs of the default run.
growth      how tuning and evaluation time grow with classes, shots, epochs and clip length (three
         sizes each around the default demo run) and the paper protocols' predicted time
         (``apt_uss.tools.cost_growth``; ``--growth-config demo``).
pipeline    the wall time of ``make pipeline-run N_SHOT=5`` (the default demo run), by task, from
         the KFP local runner's log (``--pipeline-command`` to time another command).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import resource
import statistics
import sys
import time

import numpy as np
import pandas as pd
import torch

from apt_uss.data.mixtures import render_mixture
from apt_uss.evaluation.metrics import bss_sdr
from apt_uss.method.tuning import tune_prompts
from apt_uss.models.backbone import load_backbone
from apt_uss.models.device import use_available_cores
from apt_uss.tools.cost_growth import measure_growth, print_growth, say, tone_clips

BENCHES = ("forward", "sdr", "tuning", "separation", "embedding", "growth", "pipeline")
SDR_TOLERANCE_DB = 0.01


def _reset_peak_rss() -> bool:
    """Reset this process's peak RSS (Linux >= 4.0), so each benchmark reports its own peak.

    Without it, ``ru_maxrss`` is the peak of the whole process: after the ``paper`` forward
    bench, every later figure would read ~2 GB.
    """
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _status_mib(field: str) -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _peak_rss_mib() -> float:
    peak = _status_mib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --- forward -------------------------------------------------------------------------------

def _timed(fn, repeats: int) -> float:
    fn()  # warm-up: first-call allocations and kernel selection
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _mib(module: torch.nn.Module) -> float:
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20


def bench_config(name: str, repeats: int, seconds: float = 2.0) -> dict:
    _reset_peak_rss()
    model = load_backbone(name)
    wav = torch.randn(1, int(seconds * model.cfg.sample_rate)) * 0.1
    with torch.inference_mode():
        cond = model.sed(wav)["latent_output"]
        sed_s = _timed(lambda: model.sed(wav), repeats)
        sep_s = _timed(lambda: model.separator(wav, cond), repeats)
    return {
        "config": name, "clip_seconds": seconds, "threads": torch.get_num_threads(),
        "sed_forward_s": sed_s, "separator_forward_s": sep_s,
        "sed_weights_mib": _mib(model.sed), "separator_weights_mib": _mib(model.separator),
        "peak_rss_mib_after": _peak_rss_mib(),
    }


def run_forward(configs: list[str], repeats: int) -> list[dict]:
    results = []
    print(f"{'config':8s} {'SED fwd (2 s)':>14s} {'sep fwd (2 s)':>14s} {'SED MiB':>9s} {'sep MiB':>9s} {'peak RSS MiB':>13s}")
    for name in configs:
        r = bench_config(name, repeats)
        results.append(r)
        print(f"{name:8s} {r['sed_forward_s']:12.3f} s {r['separator_forward_s']:12.3f} s "
              f"{r['sed_weights_mib']:9.1f} {r['separator_weights_mib']:9.1f} {r['peak_rss_mib_after']:13.0f}",
              flush=True)
    return results


# --- sdr -----------------------------------------------------------------------------------

def _sdr_pair(seed: int, index: int, samples: int, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """A float32 (reference, estimate) pair shaped like a separator's: a tonal source under an
    envelope plus coloured noise, and an estimate with gain and filtering errors, leakage and noise."""
    rng = np.random.default_rng([seed, index])
    t = np.arange(samples) / sr
    f0 = rng.uniform(80, 800)
    tone = sum(rng.uniform(0.1, 1) * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi)) for h in (1, 2, 3))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.2, 3) * t) ** 2
    reference = 0.1 * (tone * envelope + np.convolve(rng.standard_normal(samples), np.ones(8) / 8, "same"))
    fir = np.r_[1.0, np.zeros(15)] + 0.2 * rng.standard_normal(16)
    estimate = rng.uniform(0.5, 1.2) * np.convolve(reference, fir)[:samples]
    estimate += rng.uniform(0.005, 0.05) * rng.standard_normal(samples)
    return reference.astype(np.float32), estimate.astype(np.float32)


def _museval_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    import museval  # imported here: only this benchmark needs it

    n = len(reference)
    return float(museval.evaluate(reference[None, :, None], estimate[None, :, None], win=n, hop=n)[0][0, 0])


def run_sdr(pairs: int, museval_pairs: int, seconds: float = 5.0, sr: int = 32000, seed: int = 0) -> dict:
    """Time both on the same pairs, each call alone; pairs are built one at a time outside the
    timers, so memory stays small and the estimate is warm in cache, as right after separation."""
    _reset_peak_rss()
    museval_pairs = min(museval_pairs, pairs)
    samples = int(seconds * sr)
    t_ours, t_museval, diffs = [], [], []
    for i in range(pairs):
        reference, estimate = _sdr_pair(seed, i, samples, sr)
        start = time.perf_counter()
        ours = bss_sdr(reference, estimate)
        t_ours.append(time.perf_counter() - start)
        if i < museval_pairs:
            start = time.perf_counter()
            theirs = _museval_sdr(reference, estimate)
            t_museval.append(time.perf_counter() - start)
            diffs.append(abs(ours - theirs))
        if (i + 1) % 20 == 0:
            say(f"sdr: {i + 1}/{pairs} pairs")
    ours_same = len(t_museval) / sum(t_ours[: len(t_museval)])  # on the pairs museval scored too
    r = {
        "pairs": pairs, "museval_pairs": len(t_museval), "samples": samples, "sample_rate": sr,
        "museval_mixtures_per_s": len(t_museval) / sum(t_museval),
        "bss_sdr_mixtures_per_s": ours_same,
        "bss_sdr_mixtures_per_s_all_pairs": pairs / sum(t_ours),
        "max_abs_diff_db": max(diffs), "tolerance_db": SDR_TOLERANCE_DB,
        "peak_rss_mib": _peak_rss_mib(),
    }
    r["speedup"] = r["bss_sdr_mixtures_per_s"] / r["museval_mixtures_per_s"]
    r["ok"] = bool(r["max_abs_diff_db"] < SDR_TOLERANCE_DB)
    print(f"\nSDR evaluation, {seconds:g}-s pairs at {sr} Hz (float32)")
    print(f"{'method':10s} {'pairs':>6s} {'mixtures/s':>11s}")
    print(f"{'museval':10s} {r['museval_pairs']:6d} {r['museval_mixtures_per_s']:11.1f}")
    print(f"{'bss_sdr':10s} {r['museval_pairs']:6d} {r['bss_sdr_mixtures_per_s']:11.1f}")
    print(f"{'bss_sdr':10s} {pairs:6d} {r['bss_sdr_mixtures_per_s_all_pairs']:11.1f}")
    print(f"speed-up (same {r['museval_pairs']} pairs): {r['speedup']:.0f}x; max |SDR difference| "
          f"{r['max_abs_diff_db']:.2e} dB ({'OK' if r['ok'] else 'FAIL'}: tolerance {SDR_TOLERANCE_DB} dB)",
          flush=True)
    return r


# --- tuning --------------------------------------------------------------------------------

def _tuning_problem(n_classes: int, clips_per_class: int, epochs: int, crop: int, sr: int, seed: int):
    """Seeded 5-s clips (``cost_growth.tone_clips``) and a training table in the pipeline's layout:
    each clip the target once per epoch, against a clip of another class, random 2-s crops."""
    rng = np.random.default_rng(seed)
    clip_len = 5 * sr
    clips, files = tone_clips(n_classes, clips_per_class, 5.0, sr, rng)
    files, classes = [f for f, _ in files], np.array([c for _, c in files])
    rows = []
    for epoch in range(epochs):
        for i in rng.permutation(len(files)):
            j = rng.choice(np.flatnonzero(classes != classes[i]))
            rows.append(dict(epoch=epoch, target_file=files[i], target=int(classes[i]),
                             interferer_file=files[j], interferer=int(classes[j]),
                             target_offset=int(rng.integers(clip_len - crop + 1)),
                             interferer_offset=int(rng.integers(clip_len - crop + 1))))
    return clips, pd.DataFrame(rows)


def _straightforward_epoch(separator, initial, targets, rows, clips, mix_rule, crop, lr, batch_size):
    """One epoch of the obvious loop: the computation of ``tune_prompts``, but the weights keep
    ``requires_grad`` (so backward also computes their gradients); Adam still steps the prompts only."""
    prompts = torch.nn.Parameter(torch.from_numpy(np.array(initial, dtype=np.float32)))
    optimizer = torch.optim.Adam([prompts], lr=lr)
    row_of_target = {int(t): i for i, t in enumerate(targets)}
    rows = list(rows.itertuples(index=False))
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        pairs = [render_mixture(r, clips, mix_rule, crop) for r in batch]
        mixture = torch.from_numpy(np.stack([p[0] for p in pairs]))
        target = torch.from_numpy(np.stack([p[1] for p in pairs]))
        index = torch.tensor([row_of_target[int(r.target)] for r in batch])
        loss = torch.nn.functional.l1_loss(separator(mixture, prompts[index])["wav"], target)
        optimizer.zero_grad(set_to_none=True)
        separator.zero_grad(set_to_none=True)  # or weight gradients pile up across steps
        loss.backward()
        optimizer.step()
    return prompts.detach().numpy()


def bench_tuning(config: str, epochs: int, n_classes: int = 10, clips_per_class: int = 2,
                 batch_size: int = 4, crop_seconds: float = 2.0, mix_rule: str = "energy_match",
                 lr: float = 3e-4, seed: int = 0) -> dict:
    """Epoch 0 warms both loops up; the later epochs are timed, alternating between the two so
    that load from other processes on the machine falls on both alike.

    Each timed epoch is one ``tune_prompts`` call (its setup, an Adam and a ``.to``, is
    negligible beside a step); the straightforward loop mirrors that, so after the same epochs
    both prompt tables must agree, which checks that the two loops compute the same thing.
    """
    if epochs < 2:
        raise ValueError("--tuning-epochs must be >= 2: one warm-up epoch and at least one timed")
    backbone = load_backbone(config)
    sr, dim = backbone.cfg.sample_rate, backbone.cfg.embed_dim  # prompts are the SED's latent width
    frozen = backbone.separator
    trainable = copy.deepcopy(frozen).eval().requires_grad_(True)  # eval: same BatchNorm maths as tuning
    del backbone
    crop = int(crop_seconds * sr)
    clips, table = _tuning_problem(n_classes, clips_per_class, epochs, crop, sr, seed)
    targets = np.arange(n_classes)
    initial = (0.1 * np.random.default_rng(seed).standard_normal((n_classes, dim))).astype(np.float32)
    loops = {
        "tune_prompts": lambda p, rows: tune_prompts(frozen, p, targets, rows, clips, mix_rule, crop,
                                                     lr=lr, batch_size=batch_size)[0],
        "straightforward": lambda p, rows: _straightforward_epoch(trainable, p, targets, rows, clips,
                                                                  mix_rule, crop, lr, batch_size),
    }
    prompts = {name: initial for name in loops}
    seconds = {name: [] for name in loops}  # per timed epoch
    peak = {name: 0.0 for name in loops}
    rss_before = _status_mib("VmRSS")
    steps_per_epoch = -(-n_classes * clips_per_class // batch_size)
    for epoch in range(epochs):
        rows = table[table["epoch"] == epoch]
        for name, loop in loops.items():
            _reset_peak_rss()
            start = time.perf_counter()
            prompts[name] = loop(prompts[name], rows)
            elapsed = time.perf_counter() - start
            peak[name] = max(peak[name], _peak_rss_mib())
            if epoch > 0:
                seconds[name].append(elapsed)
            say(f"tuning {config}: epoch {epoch + 1}/{epochs} ({'timed' if epoch else 'warm-up'}) "
                 f"{name}: {steps_per_epoch} steps in {elapsed:.1f} s")
    mixtures_per_epoch = n_classes * clips_per_class
    r = {"config": config, "prompt_dim": dim, "classes": n_classes, "batch_size": batch_size,
         "crop_samples": crop, "threads": torch.get_num_threads(), "timed_steps": steps_per_epoch * (epochs - 1),
         "rss_mib_before": rss_before,
         "prompt_max_abs_diff": float(np.max(np.abs(prompts["tune_prompts"] - prompts["straightforward"]))),
         # what the diff is measured against: how far tuning moved the prompts
         "prompt_max_movement": float(np.max(np.abs(prompts["straightforward"] - initial)))}
    for name in loops:
        # The median epoch: one epoch slowed by another process on the machine must not set the rate.
        epoch_s = statistics.median(seconds[name])
        r[f"{name}_epoch_seconds"] = seconds[name]
        r[f"{name}_steps_per_s"] = steps_per_epoch / epoch_s
        r[f"{name}_mixtures_per_s"] = mixtures_per_epoch / epoch_s
        r[f"{name}_steps_per_s_mean"] = r["timed_steps"] / sum(seconds[name])
        r[f"{name}_peak_rss_mib"] = peak[name]
    r["speedup"] = r["tune_prompts_steps_per_s"] / r["straightforward_steps_per_s"]
    return r


# The paper's backbone takes ~2 s per 2-s clip forward on 2 cores: smaller problems keep its rows
# to minutes (one warm-up and one timed epoch of one step; fewer mixtures and clips).
PAPER_SIZES = {"tuning": dict(epochs=2, n_classes=4, clips_per_class=1), "separation": dict(mixtures=2),
               "embedding": dict(clips=4, epochs=3)}


def _sized(bench: str, config: str, **defaults) -> dict:
    return {**defaults, **(PAPER_SIZES[bench] if config == "paper" else {})}


def run_tuning(configs: list[str], epochs: int) -> list[dict]:
    results = [bench_tuning(name, **_sized("tuning", name, epochs=epochs)) for name in configs]
    print("\nPrompt tuning (batch 4, 2-s crops, energy_match; rates of the median epoch after a 1-epoch warm-up)")
    print(f"{'config':8s} {'loop':16s} {'steps':>6s} {'steps/s':>8s} {'mixtures/s':>11s} {'peak RSS MiB':>13s}")
    for r in results:
        for name in ("tune_prompts", "straightforward"):
            print(f"{r['config']:8s} {name:16s} {r['timed_steps']:6d} {r[f'{name}_steps_per_s']:8.2f} "
                  f"{r[f'{name}_mixtures_per_s']:11.2f} {r[f'{name}_peak_rss_mib']:13.0f}")
        print(f"{r['config']:8s} tune_prompts / straightforward: {r['speedup']:.2f}x "
              f"({r['prompt_dim']}-d prompts, {r['threads']} threads; prompts differ by at most "
              f"{r['prompt_max_abs_diff']:.1e}; tuning moved them by up to {r['prompt_max_movement']:.1e})", flush=True)
    return results


# --- separation, embedding, pipeline ---------------------------------------------------------

def bench_separation(config: str, mixtures: int = 12, seconds: float = 5.0, seed: int = 0) -> dict:
    from apt_uss.evaluation.evaluate import separate
    from apt_uss.models.frozen_separator import frozen_separator

    backbone = load_backbone(config)
    sr, dim = backbone.cfg.sample_rate, backbone.cfg.embed_dim
    frozen = backbone.separator
    trainable = copy.deepcopy(frozen).eval().requires_grad_(True)
    rng = np.random.default_rng(seed)
    wavs = (0.1 * rng.standard_normal((mixtures, int(seconds * sr)))).astype(np.float32)
    queries = rng.standard_normal((mixtures, dim)).astype(np.float32)

    def straightforward(i):
        return trainable(torch.from_numpy(wavs[i : i + 1]), torch.from_numpy(queries[i : i + 1]))["wav"].detach().numpy()[0]

    folded = frozen_separator(frozen)  # as evaluate_prompts runs it: folded once per call
    loops = {"separate": lambda i: separate(folded, wavs[i : i + 1], queries[i : i + 1], "cpu")[0],
             "straightforward": straightforward}
    for loop in loops.values():  # warm-up
        loop(0)
    elapsed, outputs = {name: 0.0 for name in loops}, {name: [] for name in loops}
    for i in range(mixtures):  # interleaved, so load from elsewhere falls on both alike
        for name, loop in loops.items():
            start = time.perf_counter()
            outputs[name].append(loop(i))
            elapsed[name] += time.perf_counter() - start
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(outputs["separate"], outputs["straightforward"]))
    peak = max(float(np.max(np.abs(b))) for b in outputs["straightforward"])
    r = {"config": config, "mixture_seconds": seconds, "mixtures": mixtures, "threads": torch.get_num_threads(),
         "max_abs_diff": diff, "output_peak": peak}
    for name in loops:
        r[f"{name}_mixtures_per_s"] = mixtures / elapsed[name]
    r["speedup"] = r["separate_mixtures_per_s"] / r["straightforward_mixtures_per_s"]
    return r


def run_separation(configs: list[str], mixtures: int) -> list[dict]:
    results = [bench_separation(name, **_sized("separation", name, mixtures=mixtures)) for name in configs]
    print("\nSeparation of 5-s test mixtures, one at a time (the CPU evaluation's batch)")
    print(f"{'config':8s} {'separate /s':>12s} {'straightforward /s':>19s} {'ratio':>6s} {'max |diff|':>11s}")
    for r in results:
        print(f"{r['config']:8s} {r['separate_mixtures_per_s']:12.2f} {r['straightforward_mixtures_per_s']:19.2f} "
              f"{r['speedup']:5.2f}x {r['max_abs_diff']:11.1e}", flush=True)
    return results


def bench_embedding(config: str, clips: int = 24, seconds: float = 5.0, epochs: int = 20, seed: int = 0) -> dict:
    """The pipeline embeds the training clips once (an artifact); the straightforward loop embeds
    them again at the start of every tuning epoch. Both are timed; their embeddings are compared."""
    from apt_uss.method.prompts import embed_clips

    backbone = load_backbone(config)
    sr = backbone.cfg.sample_rate
    rng = np.random.default_rng(seed)
    audio = [(f"clip{i}", (0.2 * rng.standard_normal(int(seconds * sr))).astype(np.float32)) for i in range(clips)]
    embed_clips(backbone.sed, audio[:2], 2, sr)  # warm-up
    start = time.perf_counter()
    once = embed_clips(backbone.sed, iter(audio), clips, sr)
    once_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(epochs):
        again = embed_clips(backbone.sed, iter(audio), clips, sr)
    per_epoch_s = time.perf_counter() - start
    diff = max(float(np.max(np.abs(once[k] - again[k]))) for k in once)
    return {"config": config, "clips": clips, "clip_seconds": seconds, "clips_per_s": clips / once_s,
            "default_epochs": epochs, "embedding_seconds_once": once_s, "embedding_seconds_per_epoch_loop": per_epoch_s,
            "speedup": per_epoch_s / once_s, "max_abs_diff": diff}


def run_embedding(configs: list[str]) -> list[dict]:
    results = [bench_embedding(name, **_sized("embedding", name)) for name in configs]
    print("\nSED embedding of 5-s clips (loud 2-s segments, averaged)")
    for r in results:
        print(f"{r['config']:8s} {r['clips_per_s']:8.2f} clips/s; once per run: {r['embedding_seconds_once']:.1f} s "
              f"for {r['clips']} clips, per epoch for {r['default_epochs']} epochs: "
              f"{r['embedding_seconds_per_epoch_loop']:.1f} s ({r['speedup']:.1f}x; embeddings differ by at most "
              f"{r['max_abs_diff']:.1e})", flush=True)
    return results


TASK_LINE = re.compile(r"^(\d\d):(\d\d):(\d\d\.\d+) - INFO - (Executing task|Task) '([^']+)'(?: finished with status (\w+))?")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def task_durations(log_lines) -> list[dict]:
    """Per-task wall seconds from the KFP local runner's log ("Executing task 'x'" ... "Task 'x' finished")."""
    started, out = {}, []
    for line in log_lines:
        m = TASK_LINE.match(ANSI.sub("", line.strip()))
        if not m:
            continue
        h, mi, sec, kind, task, status = m.groups()
        t = int(h) * 3600 + int(mi) * 60 + float(sec)
        if kind == "Executing task":
            started[task] = t
        elif task in started:
            out.append({"task": task, "seconds": (t - started.pop(task)) % 86400, "status": status})
    return out


def bench_pipeline(command: str) -> dict:
    import subprocess

    say(f"pipeline: running `{command}`")
    start = time.perf_counter()
    proc = subprocess.Popen(command, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "Executing task" in line or "finished with status" in line:
            print(ANSI.sub("", line.rstrip()), flush=True)
    wall = time.perf_counter() - start
    if proc.wait() != 0:
        print("".join(lines[-40:]), file=sys.stderr)
        raise RuntimeError(f"`{command}` failed (exit {proc.returncode})")
    tasks = task_durations(lines)
    return {"command": command, "wall_seconds": wall, "tasks": tasks,
            "tasks_seconds": sum(t["seconds"] for t in tasks)}


def run_pipeline_bench(command: str) -> dict:
    r = bench_pipeline(command)
    print(f"\n`{r['command']}`: {r['wall_seconds']:.0f} s wall")
    for t in r["tasks"]:
        print(f"  {t['task']:22s} {t['seconds']:7.1f} s")
    print(f"  {'(outside tasks)':22s} {r['wall_seconds'] - r['tasks_seconds']:7.1f} s", flush=True)
    return r


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=BENCHES, default=list(BENCHES),
                        help="which benchmarks to run (default: all)")
    parser.add_argument("--configs", nargs="+", default=["small", "paper"], help="forward: backbone configs")
    parser.add_argument("--repeats", type=int, default=3, help="forward: timed repeats")
    parser.add_argument("--sdr-pairs", type=int, default=200, help="sdr: pairs scored by bss_sdr")
    parser.add_argument("--museval-pairs", type=int, default=40, help="sdr: the first N of them also by museval")
    parser.add_argument("--tuning-configs", nargs="+", default=["small", "demo", "paper"],
                        help="tuning: backbone configs")
    parser.add_argument("--tuning-epochs", type=int, default=5, help="tuning: epochs of 5 steps, the first a warm-up")
    parser.add_argument("--separation-configs", nargs="+", default=["demo", "small", "paper"],
                        help="separation: configs")
    parser.add_argument("--separation-mixtures", type=int, default=12, help="separation: timed mixtures")
    parser.add_argument("--embedding-configs", nargs="+", default=["demo", "paper"], help="embedding: configs")
    parser.add_argument("--growth-config", default="demo", help="growth: backbone config")
    parser.add_argument("--pipeline-command", default="make -s pipeline-run N_SHOT=5 EXPERIMENT=apt-uss-bench",
                        help="pipeline: the command timed")
    parser.add_argument("--json", default="", help="also write the results here, keyed by benchmark")
    args = parser.parse_args(argv)
    use_available_cores()
    # Other processes' load skews every figure here: record it beside them.
    results, status = {"machine": {"torch_threads": torch.get_num_threads(), "loadavg_1min_start": os.getloadavg()[0]}}, 0
    if "forward" in args.only:
        results["forward"] = run_forward(args.configs, args.repeats)
    if "sdr" in args.only:
        results["sdr"] = run_sdr(args.sdr_pairs, args.museval_pairs)
        if not results["sdr"]["ok"]:
            status = 1
    if "tuning" in args.only:
        results["tuning"] = run_tuning(args.tuning_configs, args.tuning_epochs)
    if "separation" in args.only:
        results["separation"] = run_separation(args.separation_configs, args.separation_mixtures)
    if "embedding" in args.only:
        results["embedding"] = run_embedding(args.embedding_configs)
    if "growth" in args.only:
        results["growth"] = print_growth(measure_growth(args.growth_config), args.growth_config)
    if "pipeline" in args.only:
        results["pipeline"] = run_pipeline_bench(args.pipeline_command)
    results["machine"]["loadavg_1min_end"] = os.getloadavg()[0]
    say(f"load average (1 min) at start {results['machine']['loadavg_1min_start']:.2f}, "
         f"at end {results['machine']['loadavg_1min_end']:.2f}, on {torch.get_num_threads()} threads")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return status


if __name__ == "__main__":
    sys.exit(main())
