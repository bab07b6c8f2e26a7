"""The benchmark harness measures what it says: same results on both sides, per-task times parsed from KFP's log."""

import json
import subprocess
import sys
from pathlib import Path

from apt_uss.bench import task_durations

ROOT = Path(__file__).resolve().parents[1]


def test_task_durations_come_from_the_local_runners_log_lines():
    lines = ["21:00:01.500000 - INFO - Executing task \x1b[96m'fetch-dataset'\x1b[0m\n",
             "unrelated output\n",
             "21:00:04.000000 - INFO - Task \x1b[96m'fetch-dataset'\x1b[0m finished with status \x1b[92mSUCCESS\x1b[0m\n",
             "23:59:59.000000 - INFO - Executing task \x1b[96m'tune-prompts'\x1b[0m\n",
             "00:00:09.000000 - INFO - Task \x1b[96m'tune-prompts'\x1b[0m finished with status \x1b[92mSUCCESS\x1b[0m\n"]
    assert task_durations(lines) == [{"task": "fetch-dataset", "seconds": 2.5, "status": "SUCCESS"},
                                     {"task": "tune-prompts", "seconds": 10.0, "status": "SUCCESS"}]  # past midnight


def test_separation_and_embedding_benches_report_rates_of_equal_computations(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "-m", "apt_uss.bench", "--only", "separation", "embedding",
                           "--separation-configs", "tiny", "--separation-mixtures", "2", "--embedding-configs", "tiny",
                           "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(out.read_text())
    sep = results["separation"][0]
    assert sep["config"] == "tiny" and sep["separate_mixtures_per_s"] > 0 and sep["straightforward_mixtures_per_s"] > 0
    assert sep["max_abs_diff"] < 1e-5  # the fast path separates exactly as the plain forward does
    emb = results["embedding"][0]
    assert emb["clips_per_s"] > 0 and emb["max_abs_diff"] == 0.0  # embedding once gives what every epoch would
    assert emb["embedding_seconds_per_epoch_loop"] > emb["embedding_seconds_once"]
    assert "Separation of 5-s test mixtures" in done.stdout
