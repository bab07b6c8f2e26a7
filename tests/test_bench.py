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
