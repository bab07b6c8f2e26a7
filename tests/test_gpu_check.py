"""The GPU check (``python -m apt_uss.tools.gpu_check``) runs where the GPU machine runs it: without kfp, mlflow,
boto3 or museval, and on a machine without CUDA as a short CPU dry mode that says the GPU figures were
not measured."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The GPU machine has torch, numpy, pandas, scipy, matplotlib, torchaudio (and soundfile from wheels), but
# none of the pipeline's services: importing any of these there would fail.
BLOCKER = """
import importlib.abc, sys
BLOCKED = {"kfp", "mlflow", "boto3", "botocore", "s3transfer", "museval", "psycopg2"}
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not installed on the GPU machine")
sys.meta_path.insert(0, Blocker())
for name in list(sys.modules):
    if name.split(".")[0] in BLOCKED:
        del sys.modules[name]
"""


def _one_core() -> None:
    # The dry mode's rates mean nothing; on 2 cores shared with the rest of the suite one torch thread
    # finishes it in about half the time two do (measured 28 s against 55 s: threads waiting on each other).
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def _run_blocked(code: str, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER + code], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=_one_core)


def test_the_check_imports_without_kfp_mlflow_boto3_or_museval():
    # The modules the sections import lazily too: a top-level import of a blocked package in any fails here.
    done = _run_blocked("import apt_uss.tools.gpu_check, apt_uss.steps.pipeline, apt_uss.tools.bench, apt_uss.method.tuning, apt_uss.evaluation.evaluate, "
                        "apt_uss.evaluation.metrics, apt_uss.models.frozen_separator\n"
                        "assert not {m.split('.')[0] for m in sys.modules} & BLOCKED\n"
                        "print('imported')", timeout=120)
    assert done.returncode == 0 and "imported" in done.stdout, done.stderr[-3000:]


@pytest.mark.slow  # 25-30 s on 2 shared cores: a whole (tiny) pipeline among the sections
def test_dry_mode_reports_every_section_and_says_the_gpu_figures_were_not_measured(tmp_path):
    out = tmp_path / "dist" / "gpu_check.json"  # the folder does not exist yet: the check makes it
    # The budget only caps the sections (they take 25-30 s on 2 idle cores); a generous one keeps a loaded
    # machine (a CI run beside other jobs made one bf16 call take 3.75 s) from cutting a section short.
    done = _run_blocked("from apt_uss.tools.gpu_check import main\n"
                        f"sys.exit(main(['--dry', '--budget-s', '600', '--json', {str(out)!r}]))", timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["mode"] == "cpu-dry" and report["gpu_measured"] is False
    assert report["gpu_figures"].startswith("NOT MEASURED") and "NOT MEASURED" in done.stdout
    assert report["peak_gpu_mib"] is None
    env = report["environment"]
    assert env["torch"] and env["source_sha256"] and "git_commit" in env
    sections = report["sections"]
    assert set(sections) == {"setup", "tuning_fp32", "tuning_bf16", "evaluation", "pipeline", "tuning_compile"}
    for name in ("setup", "tuning_fp32", "tuning_bf16", "evaluation", "pipeline"):
        assert sections[name]["status"] == "ok", (name, sections[name])

    def positive(x):
        return isinstance(x, (int, float)) and math.isfinite(x) and x > 0

    for name in ("tuning_fp32", "tuning_bf16"):
        tuning = sections[name]
        assert tuning["backbone"] == "tiny" and tuning["timed_epochs"] >= 2
        assert positive(tuning["steps_per_s"]) and positive(tuning["mixtures_per_s"])
    rows = sections["evaluation"]["rows"]
    assert {(r["batch_size"], r["precision"]) for r in rows} == {(1, "fp32"), (1, "bf16"), (2, "fp32"), (2, "bf16")}
    assert all(positive(r["mixtures_per_s"]) and r["calls"] >= 2 for r in rows)
    # bf16 autocast of the same inputs: close to fp32 (an unrelated output would be near 0 dB).
    assert all(r["snr_vs_fp32_db"] > 20 for r in rows if r["precision"] == "bf16")
    pipeline = sections["pipeline"]
    assert list(pipeline["stages"]) == ["fetch_dataset", "split_folds", "simulate_mixtures", "init_prompts",
                                        "evaluate_baseline", "tune_prompts", "evaluate_apt"]
    assert all(positive(stage["seconds"]) for stage in pipeline["stages"].values())
    assert math.isfinite(pipeline["sdr_baseline_pooled_median"]) and math.isfinite(pipeline["sdr_apt_pooled_median"])
    assert pipeline["stages"]["tune_prompts"]["steps"] == 2  # 2 classes x 2 shots, batch 4, 2 epochs
    # What was not done is said, with why.
    compile_ = sections["tuning_compile"]
    assert compile_["status"] == "skipped" and "dry mode" in compile_["skipped"][0]["why"]
    assert {"section": "tuning_compile", "what": "the whole section", "why": compile_["skipped"][0]["why"]} \
        in report["skipped"]
    assert "tuning_fp32" in done.stdout and "pooled median SDR" in done.stdout


def _check(tmp_path, budget_s: float):
    import argparse

    import torch

    from apt_uss.tools import gpu_check

    args = argparse.Namespace(json=str(tmp_path / "check.json"), budget_s=budget_s, skip=[], dry=True)
    return gpu_check.Check(args, torch.device("cpu"), False, gpu_check.DRY_SIZES)


def test_a_section_that_fails_or_overruns_is_recorded_and_the_check_goes_on(tmp_path, monkeypatch):
    import time

    from apt_uss.tools import gpu_check

    monkeypatch.setattr(gpu_check, "GRACE_S", 0.2)
    monkeypatch.setattr(gpu_check, "MIN_SECTION_S", 0.1)
    # A budget of seconds, counted from the first section: on a loaded machine the set-up must not use it up
    # (the overrun below takes what is left, then the hard limit ends it).
    budget_s = 5.0
    check = _check(tmp_path, budget_s=budget_s)
    check.deadline = time.monotonic() + budget_s  # from here: the check's own set-up is not what is tested

    def fails(section, deadline, hard):
        raise ValueError("no such kernel\nsecond line")

    def overruns(section, deadline, hard):
        section["started"] = True
        time.sleep(30)  # the hard limit (deadline + GRACE_S) ends it

    # Names outside SHARES (as the setup is) get all that is left of the budget.
    check.run_section("a_failure", fails)
    started = time.monotonic()
    check.run_section("an_overrun", overruns)
    assert time.monotonic() - started < budget_s + gpu_check.GRACE_S + 5  # not the 30 s it asked for
    check.run_section("pipeline", lambda section, deadline, hard: None)  # nothing left of the budget
    report = json.loads((tmp_path / "check.json").read_text())  # written after every section
    failure, overrun, pipeline = (report["sections"][n] for n in ("a_failure", "an_overrun", "pipeline"))
    assert failure["status"] == "failed" and failure["error"] == "ValueError: no such kernel"
    assert overrun["status"] == "timed out" and overrun["started"] is True
    assert "hard time limit" in overrun["skipped"][0]["why"]
    assert pipeline["status"] == "skipped" and "budget left" in pipeline["skipped"][0]["why"]
    assert [s["section"] for s in report["skipped"]] == ["an_overrun", "pipeline"]
    text = gpu_check.table(report)
    assert "failed:\n  a_failure: ValueError: no such kernel" in text and "NOT MEASURED" in text


def test_each_section_gets_its_share_and_the_last_what_is_left(tmp_path):
    from apt_uss.tools import gpu_check

    check = _check(tmp_path, budget_s=100.0)
    seen = {}
    for name in gpu_check.SECTIONS:
        check.run_section(name, lambda section, deadline, hard, name=name: seen.update({name: section["allotted_s"]}))
    for name in gpu_check.SECTIONS[:-1]:
        assert abs(seen[name] - 100 * gpu_check.SHARES[name]) < 1
    assert seen["tuning_compile"] > 100 * (1 - sum(list(gpu_check.SHARES.values())[:-1])) - 2  # the unused rest too
    assert sum(gpu_check.SHARES.values()) == 1.0
