"""Backbone forward benchmarks: ``python -m apt_uss.bench [--configs paper small] [--json out.json]``.

Prints, per named config, the forward time of the SED and of the separator on one 2-s
clip (median of repeats, after a warm-up) and the memory they take: weights, and the peak
resident memory of this process after the run.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time

import torch

from .device import use_available_cores
from .models import load_backbone


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
        "peak_rss_mib_after": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--configs", nargs="+", default=["small", "paper"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default="", help="also write the results here")
    args = parser.parse_args(argv)
    use_available_cores()
    results = []
    print(f"{'config':8s} {'SED fwd (2 s)':>14s} {'sep fwd (2 s)':>14s} {'SED MiB':>9s} {'sep MiB':>9s} {'peak RSS MiB':>13s}")
    for name in args.configs:
        r = bench_config(name, args.repeats)
        results.append(r)
        print(f"{name:8s} {r['sed_forward_s']:12.3f} s {r['separator_forward_s']:12.3f} s "
              f"{r['sed_weights_mib']:9.1f} {r['separator_weights_mib']:9.1f} {r['peak_rss_mib_after']:13.0f}",
              flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
