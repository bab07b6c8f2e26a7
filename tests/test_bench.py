"""The benchmark harness measures what it says: equal computations on both sides, per-task times parsed from KFP's log."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from apt_uss.tools.bench import task_durations

ROOT = Path(__file__).resolve().parents[1]


def test_task_durations_come_from_the_local_runners_log_lines():
    lines = ["21:00:01.500000 - INFO - Executing task \x1b[96m'fetch-dataset'\x1b[0m\n",
             "unrelated output\n",
             "21:00:04.000000 - INFO - Task \x1b[96m'fetch-dataset'\x1b[0m finished with status \x1b[92mSUCCESS\x1b[0m\n",
             "23:59:59.000000 - INFO - Executing task \x1b[96m'tune-prompts'\x1b[0m\n",
             "00:00:09.000000 - INFO - Task \x1b[96m'tune-prompts'\x1b[0m finished with status \x1b[92mSUCCESS\x1b[0m\n"]
    assert task_durations(lines) == [{"task": "fetch-dataset", "seconds": 2.5, "status": "SUCCESS"},
                                     {"task": "tune-prompts", "seconds": 10.0, "status": "SUCCESS"}]  # past midnight


@pytest.mark.slow
def test_separation_and_embedding_benches_report_rates_of_equal_computations(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "-m", "apt_uss.tools.bench", "--only", "separation", "embedding",
                           "--separation-configs", "tiny", "--separation-mixtures", "2", "--embedding-configs", "tiny",
                           "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(out.read_text())
    sep = results["separation"][0]
    assert sep["config"] == "tiny" and sep["separate_mixtures_per_s"] > 0 and sep["straightforward_mixtures_per_s"] > 0
    # The fast path (BatchNorm folded) and the plain forward are one function in two float32
    # operation orders (tests/test_frozen_separator.py checks the algebra in float64). On the tiny
    # separator (a few layers of sums of at most 576 terms) reordering moves the output by a few
    # float32 epsilons of its peak (measured 2); 64 epsilons bound it on any CPU's kernels, while a
    # fast path that computed something else would differ by a good fraction of the peak.
    assert 0 < sep["output_peak"] and sep["max_abs_diff"] <= 64 * np.finfo(np.float32).eps * sep["output_peak"]
    emb = results["embedding"][0]
    assert emb["config"] == "tiny" and emb["clips"] > 0
    assert np.isfinite(emb["clips_per_s"]) and emb["clips_per_s"] > 0
    assert "Separation of 5-s test mixtures" in done.stdout and "SED embedding of 5-s clips" in done.stdout


def test_the_growth_bench_times_each_size_and_predicts_the_paper_protocols_from_its_rates():
    from apt_uss.tools import cost_growth

    # The counts of the paper's protocol: 6,300 steps at 5 shots, 30,000 with full data.
    assert cost_growth.tuning_steps(50, 5, 100) == 6300 and cost_growth.tuning_steps(50, 24, 100) == 30000
    centre = {"classes": 2, "shots": 1, "epochs": 1, "clip_seconds": 2.5}
    sizes = {"classes": (2, 3), "shots": (1, 2), "epochs": (1, 2), "clip_seconds": (2.5, 3.0)}
    rows = cost_growth.measure_growth("tiny", sizes=sizes, centre=centre)
    assert [(r["varied"], r[r["varied"]]) for r in rows] == [(d, v) for d in sizes for v in sizes[d]]
    by = {(r["varied"], r[r["varied"]]): r for r in rows}
    assert by[("epochs", 2)]["tuning_steps"] == 2 and by[("classes", 3)]["test_mixtures"] == 48
    assert all(r["tuning_seconds"] > 0 and r["evaluation_seconds"] > 0 for r in rows)
    # Shots and epochs do not change the test set: their rows carry the centre's evaluation and say so.
    assert by[("shots", 2)].get("evaluation_from_centre") and not by[("classes", 3)].get("evaluation_from_centre")
    assert by[("shots", 2)]["evaluation_seconds"] == by[("shots", 1)]["evaluation_seconds"]
    summary = cost_growth.print_growth(rows, "tiny", centre)
    rate = summary["rates"]["seconds_per_step"]
    # Five distinct sizes in eight rows (the centre is a row of each dimension): each counts once.
    distinct = [by[("classes", 2)], by[("classes", 3)], by[("shots", 2)], by[("epochs", 2)], by[("clip_seconds", 3.0)]]
    assert rate == float(np.median([r["seconds_per_step"] for r in distinct]))
    five, full = summary["paper_protocols"]
    assert five["tuning_seconds"] == 6300 * rate and full["tuning_seconds"] == 30000 * rate
    assert five["test_mixtures"] == full["test_mixtures"] == 800  # 50 classes x 16 test clips


def test_the_evaluation_rate_is_a_fixed_cost_per_mixture_plus_a_cost_per_second_of_audio():
    from apt_uss.tools.cost_growth import evaluation_seconds, fitted_rates

    size = {"classes": 10, "shots": 5, "epochs": 20}
    rows = [{**size, "clip_seconds": s, "seconds_per_mixture": 0.05 + 0.01 * s, "seconds_per_step": 0.1}
            for s in (2.5, 5, 10)]
    rows.append({**size, "shots": 1, "clip_seconds": 5, "seconds_per_mixture": 9.0, "seconds_per_step": 0.1,
                 "evaluation_from_centre": True})
    rates = fitted_rates(rows)  # the row that only carries the centre's figure is not a measurement
    assert abs(rates["evaluation_seconds_per_mixture"] - 0.05) < 1e-9
    assert abs(rates["evaluation_seconds_per_audio_second"] - 0.01) < 1e-9
    assert abs(evaluation_seconds(rates, 800, 5.0) - 800 * 0.1) < 1e-6


def test_the_tuning_rate_counts_the_centre_size_once_though_every_dimension_repeats_it():
    from apt_uss.tools.cost_growth import fitted_rates

    centre = {"classes": 10, "shots": 5, "epochs": 20, "clip_seconds": 5.0}
    rows = [dict(centre, varied=d, seconds_per_step=0.1, seconds_per_mixture=0.2) for d in centre]
    for d, v in (("classes", 20), ("shots", 10), ("epochs", 40), ("clip_seconds", 10.0)):
        rows.append(dict(centre, **{d: v}, varied=d, seconds_per_step=0.3, seconds_per_mixture=0.3))
    # Over the eight rows the median would be 0.2; over the five distinct sizes it is 0.3.
    assert fitted_rates(rows)["seconds_per_step"] == 0.3
