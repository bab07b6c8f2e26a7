"""The sweep: Table 2 over seeds in one pipeline run, its statistics, its cells and its MLflow parent/child runs."""

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from apt_uss.errors import AptUssError
from apt_uss.evaluation.metrics import median_sdr_by_class, summarise
from apt_uss.method.prompts import load_prompts
from apt_uss.params import spec
from apt_uss.params.checks import parse_seeds, parse_sweep_shots
from apt_uss.results.statistics import mean_interval, paired_bootstrap, signed_rank_p
from apt_uss.results.sweep_report import check_targets, few_shot_table, gain_tests, read_cells
from apt_uss.steps.data import split_folds_step
from apt_uss.steps.pipeline import init_prompts_step
from apt_uss.steps.sweep import (
    aggregate_sweep_step,
    embed_training_clips_step,
    plan_sweep_step,
    prompts_from_embeddings_step,
)
from apt_uss.steps.validation import check_sweep_params
from tests.local_runs import executor_inputs_folded, run_environment

ROOT = Path(__file__).resolve().parents[1]


def _sweep_params(**changes):
    defaults = spec.defaults("demo")
    return {**{q.name: defaults[q.name] for q in spec.SWEEP_PARAMETERS}, **changes}


# --- parameters ---------------------------------------------------------------------------------------------


def test_sweep_shots_and_seeds_parse_and_refuse_clearly():
    assert parse_sweep_shots(" 1, 5,Full ") == parse_sweep_shots("1 5 full") == ["1", "5", "full"]
    assert parse_sweep_shots("05,10") == ["5", "10"]
    assert parse_seeds("3") == [1, 2, 3]  # a count starts at 1: seed 0 is the one settings were chosen on
    assert parse_seeds("4,7") == parse_seeds("4 7") == [4, 7]
    for bad, message in (("1,x", "'x' is not a positive integer"), ("5,05", "5 given twice"), ("", "sweep_shots")):
        with pytest.raises(AptUssError, match=message):
            parse_sweep_shots(bad)
    for bad in ("0", "-2", "two", "1,1"):
        with pytest.raises(AptUssError, match="seeds="):
            parse_seeds(bad)


def test_the_sweep_check_reads_every_cell_and_refuses_what_a_cell_sets():
    checked = check_sweep_params(_sweep_params(sweep_shots="1, FULL", seeds="2"))
    assert checked["sweep_shots"] == "1,full" and checked["seeds"] == "1,2"
    with pytest.raises(AptUssError, match="cell n_shot=40: n_shot=40 is larger than the 24"):
        check_sweep_params(_sweep_params(sweep_shots="1,40"))
    with pytest.raises(AptUssError, match="n_shot: the sweep sets these per cell"):  # not silently unused
        check_sweep_params({**_sweep_params(), "n_shot": "5"})
    with pytest.raises(AptUssError, match="ESC-50-layout"):
        check_sweep_params(_sweep_params(dataset="musdb18", dataset_uri="/data/musdb"))
    assert "n_shot" not in {q.name for q in spec.SWEEP_PARAMETERS}
    assert {"sweep_shots", "seeds"} <= {q.name for q in spec.SWEEP_PARAMETERS}
    assert "seeds" not in {q.name for q in spec.PARAMETERS}  # a single run has no sweep parameters


def test_plan_has_every_shot_with_every_seed_and_names_each_cell_run():
    cells = plan_sweep_step("1,full", "2", run_name="job")
    assert [(c["n_shot"], c["seed"]) for c in cells] == [("1", 1), ("1", 2), ("full", 1), ("full", 2)]
    assert cells[0]["label"] == "1shot-seed1" and cells[0]["run_name"] == "job-1shot-seed1"


# --- statistics ------------------------------------------------------------------------------------------------


def test_mean_interval_is_students_t():
    mean, low, high = mean_interval([1.0, 2.0, 3.0, 4.0])
    half = stats.t.ppf(0.975, 3) * np.std([1, 2, 3, 4], ddof=1) / 2
    assert mean == 2.5 and low == pytest.approx(2.5 - half) and high == pytest.approx(2.5 + half)
    assert half == pytest.approx(2.054, abs=1e-3)  # the textbook figure
    one = mean_interval([3.0])
    assert one[0] == 3.0 and math.isnan(one[1]) and math.isnan(one[2])


def test_paired_bootstrap_sees_a_real_shift_and_not_a_null_one():
    rng = np.random.default_rng(1)
    baseline = rng.normal(5, 3, size=(3, 150))
    shifted = [(b, b + 1.0 + rng.normal(0, 0.5, b.shape)) for b in baseline]
    estimate, low, high = paired_bootstrap(shifted, "mean_gain", resamples=1000)
    assert 0.5 < low < estimate < high < 1.5
    null = [(b, b + rng.normal(0, 0.5, b.shape)) for b in baseline]
    _, low, high = paired_bootstrap(null, "mean_gain", resamples=1000)
    assert low < 0 < high
    # Pairing matters: the same shift hidden in large between-mixture spread is still found.
    _, low, _ = paired_bootstrap(shifted, "median_gain", resamples=1000)
    assert low > 0
    assert paired_bootstrap(shifted, resamples=300) == paired_bootstrap(shifted, resamples=300)  # its own stream
    with pytest.raises(ValueError, match="equal"):
        paired_bootstrap([(np.zeros(3), np.zeros(4))])


def test_signed_rank_p_is_wilcoxons():
    rng = np.random.default_rng(2)
    b = rng.normal(size=40)
    a = b + rng.normal(0.3, 1, size=40)
    assert signed_rank_p(b, a) == pytest.approx(stats.wilcoxon(a - b).pvalue)
    assert math.isnan(signed_rank_p(b, b))


# --- cells, table, targets, MLflow --------------------------------------------------------------------------


def _write_cell(folder: Path, n_shot: str, seed: int, gain: float, provenance=None, classes=("a", "b")):
    rng = np.random.default_rng(seed * 100 + len(n_shot))
    rows = []
    for c in classes:
        base = rng.normal(5, 2, 20)
        rows += [{"target_class": c, "target_file": f"{c}-{i}.wav", "sdr_baseline": x,
                  "sdr_apt": x + gain + rng.normal(0, 0.3)} for i, x in enumerate(base)]
    per_mixture = pd.DataFrame(rows)
    grouped = per_mixture.groupby("target_class")
    per_class = pd.DataFrame({"target_class": list(classes), "sdr_baseline_median": grouped["sdr_baseline"].median().values,
                              "sdr_apt_median": grouped["sdr_apt"].median().values})
    per_class["sdr_gain"] = per_class["sdr_apt_median"] - per_class["sdr_baseline_median"]
    b, a = per_mixture["sdr_baseline"].median(), per_mixture["sdr_apt"].median()
    summary = {"sdr_baseline_pooled_median": b, "sdr_apt_pooled_median": a, "sdr_gain_pooled_median": a - b,
               "sdr_baseline_class_mean": b, "sdr_apt_class_mean": a, "sdr_gain_class_mean": a - b,
               "classes_improved": 2, "n_classes": 2, "n_mixtures": 40}
    folder.mkdir(parents=True)
    per_mixture.to_csv(folder / "per_mixture.csv", index=False)
    per_class.to_csv(folder / "per_class.csv", index=False)
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "cell.json").write_text(json.dumps({"n_shot": n_shot, "seed": seed, "name": f"{n_shot}shot-seed{seed}",
                                                  "provenance": provenance or {"separator_weights": "sha256:aa"}}))
    pd.DataFrame({"epoch": [1, 2], "loss": [0.5, 0.4]}).to_csv(folder / "tune_loss.csv", index=False)
    return folder


def test_table_tests_and_targets_from_cells(tmp_path):
    folders = [_write_cell(tmp_path / f"{s}-{d}", s, d, {"1": 0.5, "5": 1.5, "full": 2.0}[s])
               for s in ("full", "1", "5") for d in (1, 2, 3)]
    cells = read_cells(folders)
    assert [c.n_shot for c in cells[::3]] == ["1", "5", "full"]  # numeric order, full last
    table, tests = few_shot_table(cells), gain_tests(cells, resamples=500)
    row = table.set_index("n_shot").loc["5"]
    gains = [c.summary["sdr_gain_pooled_median"] for c in cells if c.n_shot == "5"]
    assert row["sdr_gain_pooled_median_mean"] == pytest.approx(np.mean(gains))
    assert row["sdr_gain_pooled_median_low"] < np.mean(gains) < row["sdr_gain_pooled_median_high"]
    assert (tests["gain_pooled_median_low"] > 0).all() and (tests["n_mixtures"] == 120).all()
    assert (tests["n_test_clips"] == 40).all()  # the seeds share their test clips: 40, not 3 x 40, units
    # Wilcoxon on each clip's gain averaged over the seeds.
    five = [c.per_mixture.set_index("target_file").sort_index() for c in cells if c.n_shot == "5"]
    clip_gain = np.mean([t["sdr_apt"] - t["sdr_baseline"] for t in five], axis=0)
    assert tests.set_index("n_shot").loc["5", "wilcoxon_p"] == pytest.approx(stats.wilcoxon(clip_gain).pvalue)
    assert tests.set_index("n_shot").loc["5", "classes_improved"] == 2


def test_targets_read_the_table_and_the_tests():
    table = pd.DataFrame({"n_shot": ["1", "5", "full"], "sdr_gain_pooled_median_mean": [0.4, 1.2, 2.0],
                          "sdr_apt_pooled_median_mean": [6.0, 7.0, 8.0],
                          "sdr_baseline_pooled_median_mean": [5.6, 5.8, 6.9]})
    tests = pd.DataFrame({"n_shot": ["1", "5", "full"], "gain_pooled_median_low": [0.1, 0.5, 1.0]})
    assert [t["met"] for t in check_targets(table, tests)] == [True, True, True]
    lower = table.assign(sdr_apt_pooled_median_mean=[6.0, 6.8, 8.0], sdr_gain_pooled_median_mean=[0.4, 0.9, 2.0])
    assert [t["met"] for t in check_targets(lower, tests.assign(gain_pooled_median_low=[-0.1, 0.5, 1.0]))] == \
        [False, False, False]  # 1-shot interval reaches 0; +0.9 dB < +1 dB; 6.8 dB < the full baseline's 6.9
    assert [t["met"] for t in check_targets(table.iloc[:1], tests.iloc[:1])] == [True, None, None]


def test_cells_of_other_weights_or_repeated_cells_are_refused(tmp_path):
    a = _write_cell(tmp_path / "a", "5", 1, 1.0)
    b = _write_cell(tmp_path / "b", "5", 2, 1.0, provenance={"separator_weights": "sha256:bb"})
    with pytest.raises(AptUssError, match=r"differ in separator_weights \(5shot-seed1: sha256:aa, 5shot-seed2: "):
        read_cells([a, b])
    c = _write_cell(tmp_path / "c", "5", 1, 1.0)
    with pytest.raises(AptUssError, match="more than once"):
        read_cells([a, c])
    with pytest.raises(AptUssError, match="is not a sweep cell"):
        read_cells([tmp_path])


def test_aggregate_writes_the_table_page_and_nests_a_child_run_per_cell(tmp_path):
    folders = [_write_cell(tmp_path / f"{s}-{d}", s, d, 1.0) for s in ("1", "5") for d in (1, 2)]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = tmp_path / "sweep"
    result = aggregate_sweep_step([str(f) for f in folders], str(out), run_params={"epochs": 20, "seeds": "1,2"},
                                  run_name="sweep-test", tracking_uri=uri, experiment="sweep-test", resamples=200)
    for name in ("table2.csv", "gain_tests.csv", "cells.csv", "targets.json", "few_shot.png", "report.html"):
        assert (out / name).is_file(), name
    page = (out / "report.html").read_text()
    assert "id='table2'" in page and "Wilcoxon" in page and "data:image/png;base64," in page
    client = mlflow.MlflowClient(uri)
    parent = client.get_run(result["run"]["mlflow_run_id"])
    assert parent.info.status == "FINISHED" and parent.data.tags["apt_uss.kind"] == "sweep"
    assert "sdr_gain_pooled_median_mean/5" in parent.data.metrics
    children = result["run"]["mlflow_child_run_ids"]
    assert sorted(children) == ["1shot-seed1", "1shot-seed2", "5shot-seed1", "5shot-seed2"]
    for name, run_id in children.items():
        child = client.get_run(run_id)
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.status == "FINISHED" and child.data.params["n_shot"] == name.split("shot")[0]
        assert child.data.params["shot_seed"] == child.data.params["mix_seed"] == name[-1]


def test_a_cell_with_a_bad_loss_table_stops_the_aggregate_before_any_mlflow_run(tmp_path):
    folders = [_write_cell(tmp_path / f"5-{d}", "5", d, 1.0) for d in (1, 2)]
    (folders[1] / "tune_loss.csv").write_text("")  # the second cell's: the first's child run must not be logged
    with pytest.raises(AptUssError, match=r"cell 5shot-seed2's tuning loss table .* is not a CSV table"):
        aggregate_sweep_step([str(f) for f in folders], str(tmp_path / "sweep"),
                             tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="sweep-test")
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "sweep").exists()


def test_every_score_and_statistic_reaches_table2_its_text_and_its_page(tmp_path):
    """SDR, SDRi, SI-SDR and SI-SDRi, each as pooled median, pooled mean and class mean, baseline, APT and gain:
    from the evaluation's own summary through Table 2 to the text table and the HTML page."""
    folders = []
    for seed in (1, 2):
        folder = _write_cell(tmp_path / f"5-{seed}", "5", seed, 1.0)
        units = pd.read_csv(folder / "per_mixture.csv")
        units["sdr_mixture"] = 0.5
        units["si_sdr_mixture"] = -1.0
        for system in ("baseline", "apt"):
            units[f"sdri_{system}"] = units[f"sdr_{system}"] - units["sdr_mixture"]
            units[f"si_sdr_{system}"] = units[f"sdr_{system}"] - 2.0
            units[f"si_sdri_{system}"] = units[f"si_sdr_{system}"] - units["si_sdr_mixture"]
        (folder / "summary.json").write_text(json.dumps(summarise(units, median_sdr_by_class(units))))
        folders.append(folder)
    table = few_shot_table(read_cells(folders))
    row = table.iloc[0]
    for score in ("sdr", "sdri", "si_sdr", "si_sdri"):
        for statistic in ("pooled_median", "pooled_mean", "class_mean"):
            for system in ("baseline", "apt", "gain"):
                assert f"{score}_{system}_{statistic}_mean" in table.columns, (score, system, statistic)
            apt, baseline = row[f"{score}_apt_{statistic}_mean"], row[f"{score}_baseline_{statistic}_mean"]
            assert row[f"{score}_gain_{statistic}_mean"] == pytest.approx(apt - baseline)
    # SI-SDR is SDR - 2 here, SDRi SDR - 0.5, SI-SDRi SDR - 1: the same gain, levels apart
    assert row["si_sdri_apt_pooled_mean_mean"] == pytest.approx(row["sdr_apt_pooled_mean_mean"] - 1.0)
    out = tmp_path / "sweep"
    result = aggregate_sweep_step([str(f) for f in folders], str(out), run_name="scores", resamples=50,
                                  tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="scores")
    text = (out / "table2.txt").read_text()
    lines = {tuple(line.split("|")[0].split()): line for line in text.splitlines() if " -> " in line and "|" in line}
    assert set(lines) == {("5", name) for name in ("SDR", "SDRi", "SI-SDR", "SI-SDRi")}
    b, a = row["si_sdri_baseline_class_mean_mean"], row["si_sdri_apt_class_mean_mean"]
    assert lines[("5", "SI-SDRi")].rstrip().endswith(f"{b:.2f} -> {a:.2f} ({a - b:+.2f})")
    page = (out / "report.html").read_text()
    assert "id='scores'" in page and "<td>SI-SDRi</td>" in page and f"{b:.2f} -&gt; {a:.2f}" in page
    parent = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(result["run"]["mlflow_run_id"])
    assert parent.data.metrics["si_sdri_gain_class_mean_mean/5"] == pytest.approx(a - b)


def test_table2_derives_the_gains_an_older_cell_lacks_and_leaves_out_what_a_cell_lacks(tmp_path):
    """A cell written before every gain was summarised still gives its gains (APT - baseline); a metric one cell
    lacks altogether is left out of its row rather than averaged over fewer seeds."""
    folders = [_write_cell(tmp_path / f"5-{seed}", "5", seed, 1.0) for seed in (1, 2)]
    for folder, extra in zip(folders, ({"si_sdr_baseline_pooled_mean": 1.0, "si_sdr_apt_pooled_mean": 3.5},
                                       {"si_sdr_baseline_pooled_mean": 2.0, "si_sdr_apt_pooled_mean": 4.5})):
        summary = json.loads((folder / "summary.json").read_text())
        summary.pop("sdr_gain_class_mean")  # as old cells: some gains never written
        (folder / "summary.json").write_text(json.dumps({**summary, **extra}))
    summary = json.loads((folders[0] / "summary.json").read_text())
    (folders[0] / "summary.json").write_text(json.dumps({**summary, "sdri_apt_pooled_median": 9.0,
                                                          "sdri_baseline_pooled_median": 1.0}))
    row = few_shot_table(read_cells(folders)).iloc[0]
    assert row["si_sdr_gain_pooled_mean_mean"] == pytest.approx(2.5)
    assert row["sdr_gain_class_mean_mean"] == pytest.approx(row["sdr_apt_class_mean_mean"]
                                                            - row["sdr_baseline_class_mean_mean"])
    assert "sdri_apt_pooled_median_mean" not in row.index and "sdri_gain_pooled_median_mean" not in row.index


# --- embed once ---------------------------------------------------------------------------------------------


def test_prompts_from_the_shared_embeddings_equal_the_single_run_prompts(tiny_dataset, tmp_path):
    backbone = {"backbone": "tiny", "random_weights": True}
    embeddings = tmp_path / "all.npz"
    count = embed_training_clips_step(str(tiny_dataset), str(embeddings), backbone=backbone)
    assert count == 3 * 24  # every training-fold clip of the 3 classes, once
    for n_shot, seed in (("1", 1), ("5", 2)):
        splits = tmp_path / f"splits-{n_shot}.csv"
        split_folds_step(str(tiny_dataset), str(splits), n_shot=n_shot, shot_seed=seed)
        prompts_from_embeddings_step(str(embeddings), str(splits), str(tmp_path / "shared.npz"))
        init_prompts_step(str(tiny_dataset), str(splits), str(tmp_path / "own.npz"), str(tmp_path / "own_emb.npz"),
                          backbone=backbone)
        shared, own = load_prompts(tmp_path / "shared.npz"), load_prompts(tmp_path / "own.npz")
        np.testing.assert_allclose(shared[0], own[0], rtol=0, atol=1e-6)
        assert (shared[1] == own[1]).all() and (shared[2] == own[2]).all()
    partial = tmp_path / "partial.npz"
    with np.load(embeddings) as data:
        np.savez(partial, **{k: data[k][:10] if data[k].ndim else data[k] for k in data.files})
    with pytest.raises(AptUssError, match="lack .* training clip"):
        prompts_from_embeddings_step(str(partial), str(tmp_path / "splits-5.csv"), str(tmp_path / "x.npz"))


# --- the compiled pipeline ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compiled_sweep(tmp_path_factory):
    from kfp import compiler

    from pipelines.sweep_pipeline import build_sweep_pipeline

    out = tmp_path_factory.mktemp("sweep") / "sweep.yaml"
    compiler.Compiler().compile(build_sweep_pipeline("demo", parallelism=3), str(out))
    return next(yaml.safe_load_all(out.read_text()))  # the pipeline spec (the platform spec follows)


def test_compiled_sweep_loops_over_cells_with_the_spec_parameters(compiled_sweep):
    root = compiled_sweep["root"]
    assert list(root["inputDefinitions"]["parameters"]) == sorted(q.name for q in spec.SWEEP_PARAMETERS)
    loops = [t for t in root["dag"]["tasks"].values() if "parameterIterator" in t]
    assert len(loops) == 1 and loops[0]["iteratorPolicy"]["parallelismLimit"] == 3
    body = compiled_sweep["components"][loops[0]["componentRef"]["name"]]["dag"]["tasks"]
    assert {"split-folds", "simulate-mixtures", "prompts-from-embeddings", "tune-prompts", "evaluate-sdr",
            "evaluate-sdr-2", "score-cell"} <= set(body)
    assert "init-prompts" not in body  # the model embeds each clip once, before the loop
    # that step is told what its pod asked for, as every step that runs the backbone is
    embed = root["dag"]["tasks"]["embed-training-clips"]["inputs"]["parameters"]["gpus"]
    assert embed["componentInputParameter"] == "model_gpus"
    # the plan checks the sweep's name against other Kubeflow runs (their ids, not display names), never cached
    plan = root["dag"]["tasks"]["plan-sweep"]
    given = plan["inputs"]["parameters"]
    assert given["kfp_run_id"]["runtimeValue"]["constant"] == "{{$.pipeline_job_uuid}}"
    assert given["run_name"]["runtimeValue"]["constant"] == "{{$.pipeline_job_name}}"
    assert {k: given[k]["componentInputParameter"] for k in ("tracking_uri", "experiment")} == {
        "tracking_uri": "tracking_uri", "experiment": "experiment"}
    assert plan["cachingOptions"].get("enableCache", False) is False
    assert root["dag"]["tasks"]["aggregate-sweep"]["inputs"]["artifacts"]["cells"]
    # each cell's tuning run is nested (under MLFLOW_RUN_ID's run where KFP's MLflow integration sets one)
    nested = body["tune-prompts"]["inputs"]["parameters"]["nested_run"]
    assert nested["runtimeValue"]["constant"] is True


def test_every_parameter_a_loop_task_reads_reaches_the_loop(compiled_sweep):
    """Inside a ParallelFor the compiler passes a pipeline parameter into the loop only when a task takes it as an
    input; one used only in a pod setting (the tuning pod's GPU count) was left undefined there."""
    for name, component in compiled_sweep["components"].items():
        if "dag" not in component:
            continue
        defined = set(component.get("inputDefinitions", {}).get("parameters", {}))
        for task in component["dag"]["tasks"].values():
            for source in task.get("inputs", {}).get("parameters", {}).values():
                wanted = source.get("componentInputParameter")
                assert wanted is None or wanted in defined, f"{name}: {wanted} is not an input of the loop"


# --- end to end ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_make_sweep_runs_the_cells_and_reports_table_2(s3_env, tmp_path):
    env = run_environment(s3_env, tmp_path / "state")
    args = ["--backbone", "tiny", "--random-weights", "--n-classes", "2", "--epochs", "1", "--sweep-shots", "1",
            "--seeds", "2", "--artifact-uri", "s3://apt-sweep-test/runs", "--parallelism", "2"]
    result = subprocess.run([sys.executable, "-m", "pipelines.run_sweep", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert re.search(r"^\s+1\s+2 \|", out, re.MULTILINE), out  # n_shot 1 over 2 seeds
    assert "Targets:" in out and "2 child runs" in out
    # two cells ran at once (kfp.local's thread pool): each task's executor input is still one line
    assert executor_inputs_folded(out)
    folder = Path(out.split("HTML report:", 1)[1].split()[0]).parent
    table = pd.read_csv(folder / "table2.csv", dtype={"n_shot": str})
    assert list(table["n_shot"]) == ["1"] and list(table["n_seeds"]) == [2]
    run = json.loads((folder / "run.json").read_text())
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'state' / 'mlflow.db'}")
    for run_id in run["mlflow_child_run_ids"].values():  # the cells' live tuning runs, finished with results
        child = client.get_run(run_id)
        assert child.info.status == "FINISHED" and child.data.tags["mlflow.parentRunId"] == run["mlflow_run_id"]
        assert child.data.tags["stage"] == "tuning"  # the cell's own tuning run, now holding its results
        assert "sdr_apt_pooled_median" in child.data.metrics
    experiment = client.get_experiment_by_name("apt-uss")
    stray = [r.info.run_name for r in client.search_runs([experiment.experiment_id]) if r.info.status != "FINISHED"]
    assert not stray
    assert run["s3_prefix"].startswith("s3://apt-sweep-test/runs/")



# --- settings chosen on validation data ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("value", ["warm", "cosine,constant"])
def test_select_settings_refuses_an_unknown_lr_schedule_before_any_work(value, capsys):
    from apt_uss.tools.select_settings import main

    with pytest.raises(SystemExit) as stopped:
        main(["--other-lr-schedules", value, "--out", "/nonexistent/never-written"])
    assert stopped.value.code == 2
    assert f"--other-lr-schedules {value!r}: other lr schedule(s)" in capsys.readouterr().err


@pytest.mark.parametrize("value, message", [("0,x", "give comma-separated whole numbers"),
                                            ("0,0", "give distinct whole numbers from 0 up"),
                                            ("-1", "give distinct whole numbers from 0 up"),
                                            (",", "give at least one seed")])
def test_select_settings_refuses_bad_selection_seeds_before_any_work(value, message, capsys):
    from apt_uss.tools.select_settings import main

    with pytest.raises(SystemExit) as stopped:
        main(["--selection-seeds", value, "--out", "/nonexistent/never-written"])
    assert stopped.value.code == 2
    assert f"--selection-seeds {value!r}: " in (err := capsys.readouterr().err) and message in err


def test_settings_can_be_chosen_on_several_validation_draws(tmp_path, monkeypatch):
    from apt_uss.tools import select_settings

    scored = []
    real = select_settings.evaluate_prompts

    def spy(separator, mixtures, *args, **kwargs):
        scored.append(mixtures)
        table, extra = real(separator, mixtures, *args, **kwargs)
        return table, extra

    monkeypatch.setattr(select_settings, "evaluate_prompts", spy)
    table = select_settings.select_settings(tmp_path, n_classes=2, n_shot="2", validation_clips=2, lrs=[3e-2],
                                            losses=["snr"], crop_rules=["loud"], epochs=1, epoch_choices=[1],
                                            other_lr_schedules=(), selection_seeds=(0, 5))
    assert all(m["mixture_id"].str.startswith("validation-").all() for m in scored)  # never a test mixture
    assert len(scored) == 4  # baseline and the one candidate, on each of the two draws
    draws = [pd.read_csv(tmp_path / f"draw-seed{s}" / "splits-2shot-2val.csv") for s in (0, 5)]
    train = [set(d.loc[d["split"] == "train", "filename"]) for d in draws]
    assert train[0] != train[1]  # each draw its own shots
    for row in table.to_dict("records"):
        assert row["validation_sdr_median"] == pytest.approx(
            (row["validation_sdr_median_seed0"] + row["validation_sdr_median_seed5"]) / 2)
    assert json.loads((tmp_path / "chosen.json").read_text())["selection_seeds"] == [0, 5]
    assert not list(tmp_path.glob("draw-seed*/dataset-*"))  # the draws share one copy of the dataset
    with pytest.raises(AptUssError, match="give at least one seed"):
        select_settings.select_settings(tmp_path, n_classes=2, n_shot="2", validation_clips=2, lrs=[3e-2],
                                        losses=["snr"], crop_rules=["loud"], epochs=1, epoch_choices=[1],
                                        selection_seeds=())


def test_settings_are_chosen_on_validation_mixtures_only(tmp_path, monkeypatch):
    from apt_uss.tools import select_settings

    scored = []
    real = select_settings.evaluate_prompts

    def spy(separator, mixtures, *args, **kwargs):
        scored.extend(mixtures["mixture_id"])
        return real(separator, mixtures, *args, **kwargs)

    monkeypatch.setattr(select_settings, "evaluate_prompts", spy)
    table = select_settings.select_settings(tmp_path, n_classes=2, n_shot="2", validation_clips=2, lrs=[1e-2, 3e-2],
                                            losses=["snr"], crop_rules=["loud"], epochs=1, epoch_choices=[1, 2],
                                            other_lr_schedules=("cosine",))
    assert scored and all(m.startswith("validation-") for m in scored)  # never a test mixture
    assert list(table["setting"])[:3] == ["baseline (initial prompts)", "lr0.01-snr-loud-e1", "lr0.03-snr-loud-e1"]
    assert len(table) == 5 and re.fullmatch(r"lr0\.0[13]-snr-loud-e2", table["setting"].iloc[3])
    # the best of the grid and its other epoch count, also under a cosine schedule
    best = table["setting"].iloc[1 + table["validation_sdr_median"].iloc[1:4].argmax()]
    assert table["setting"].iloc[4] == best + "-cosine" and table["lr_schedule"].iloc[4] == "cosine"
    assert int(table["chosen"].sum()) == 1
    chosen = json.loads((tmp_path / "chosen.json").read_text())
    best = table[table["setting"] != "baseline (initial prompts)"]["validation_sdr_median"].max()
    assert chosen["validation_sdr_median"] == pytest.approx(best) and chosen["lr_schedule"] in ("constant", "cosine")
    with pytest.raises(AptUssError, match="other lr schedule\\(s\\) 'warm', 'constant'"):
        select_settings.select_settings(tmp_path, n_classes=2, n_shot="2", validation_clips=2, lrs=[1e-2],
                                        losses=["snr"], crop_rules=["loud"], epochs=1, epoch_choices=[1],
                                        other_lr_schedules=("warm", "constant"))
