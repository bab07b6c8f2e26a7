"""Every step given a missing, empty or wrong input artifact stops with one error naming it, and writes nothing.

A user rerunning a step by hand (``python -m apt_uss <step> ...``) types these paths; a traceback from pandas,
soundfile or numpy would not say which of five arguments was wrong.
"""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from apt_uss.errors import AptUssError
from apt_uss.models.backbone import BackboneSpec
from apt_uss.steps import data as data_steps
from apt_uss.steps import pipeline as steps
from apt_uss.steps import sweep as sweep_steps

TINY = BackboneSpec("tiny", random_weights=True, device="cpu")


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """One tiny run's artifacts, each step's output where the next step reads it (2 classes, 1 shot, one test fold,
    one epoch, the tiny backbone with seeded weights)."""
    root = tmp_path_factory.mktemp("run")
    a = {name: str(root / name) for name in ("dataset", "splits.csv", "mixtures", "initial.npz", "embeddings.npz",
                                             "tuned.npz", "loss.csv", "baseline", "apt", "examples")}
    data_steps.fetch_dataset_step("synthetic", a["dataset"], n_classes=2, seed=0)
    data_steps.split_folds_step(a["dataset"], a["splits.csv"], n_shot="1", test_folds="5")
    data_steps.simulate_mixtures_step(a["dataset"], a["splits.csv"], a["mixtures"], epochs=1, crop_seconds=1.0)
    steps.init_prompts_step(a["dataset"], a["splits.csv"], a["initial.npz"], a["embeddings.npz"], backbone=TINY)
    steps.tune_prompts_step(a["dataset"], a["mixtures"], a["initial.npz"], a["tuned.npz"], a["loss.csv"],
                            backbone=TINY)
    steps.evaluate_step(a["dataset"], a["mixtures"], a["initial.npz"], a["baseline"], "baseline", backbone=TINY)
    steps.evaluate_step(a["dataset"], a["mixtures"], a["tuned.npz"], a["apt"], "apt", backbone=TINY)
    steps.audio_examples_step(a["dataset"], a["mixtures"], a["initial.npz"], a["tuned.npz"], a["baseline"], a["apt"],
                              a["examples"], per_class=1, backbone=TINY)
    return a


def _simulate(a, out):
    data_steps.simulate_mixtures_step(a["dataset"], a["splits.csv"], out, epochs=1, crop_seconds=1.0)


def _init(a, out):
    steps.init_prompts_step(a["dataset"], a["splits.csv"], out, out + ".embeddings", backbone=TINY)


def _tune(a, out):
    steps.tune_prompts_step(a["dataset"], a["mixtures"], a["initial.npz"], out, out + ".loss", backbone=TINY)


def _evaluate(a, out):
    steps.evaluate_step(a["dataset"], a["mixtures"], a["initial.npz"], out, "baseline", backbone=TINY)


def _examples(a, out):
    steps.audio_examples_step(a["dataset"], a["mixtures"], a["initial.npz"], a["tuned.npz"], a["baseline"], a["apt"],
                              out, per_class=1, backbone=TINY)


def _report(a, out):
    steps.report_step(a["baseline"], a["apt"], a["initial.npz"], a["tuned.npz"], a["loss.csv"], out,
                      tracking_uri=f"sqlite:///{out}.db", artifact_uri="", embeddings_path=a["embeddings.npz"],
                      examples_dir=a["examples"], model_name="none")


def _score_cell(a, out):
    sweep_steps.score_cell_step(a["baseline"], a["apt"], a["tuned.npz"], a["loss.csv"], out, n_shot="1", seed=0)


def _prompts_from_embeddings(a, out):
    sweep_steps.prompts_from_embeddings_step(a["embeddings.npz"], a["splits.csv"], out)


STEP_INPUTS = {
    _simulate: ("dataset", "splits.csv"),
    _init: ("dataset", "splits.csv"),
    _tune: ("dataset", "mixtures", "initial.npz"),
    _evaluate: ("dataset", "mixtures", "initial.npz"),
    _examples: ("dataset", "mixtures", "initial.npz", "tuned.npz", "baseline", "apt"),
    _report: ("baseline", "apt", "initial.npz", "tuned.npz", "loss.csv", "embeddings.npz", "examples"),
    _score_cell: ("baseline", "apt", "tuned.npz", "loss.csv"),
    _prompts_from_embeddings: ("embeddings.npz", "splits.csv"),
}
CASES = [(step, name, kind) for step, names in STEP_INPUTS.items() for name in names
         for kind in ("missing", "empty", "another artifact")]


def _bad_input(a, name, kind, folder: Path) -> str:
    """``a[name]`` replaced: a path that does not exist, an empty file or folder of the same kind, or the
    artifact another input takes (a folder where a file is expected and the other way round)."""
    if kind == "missing":
        return str(folder / "no-such-artifact")
    if kind == "empty":
        bad = folder / "empty"
        if Path(a[name]).is_dir():
            bad.mkdir()
        else:
            bad.write_bytes(b"")
        return str(bad)
    return a["mixtures"] if Path(a[name]).is_file() else a["loss.csv"]


@pytest.mark.parametrize("step, name, kind", CASES,
                         ids=[f"{step.__name__.lstrip('_')}-{name}-{kind.replace(' ', '_')}" for step, name, kind in CASES])
def test_a_bad_input_artifact_is_named_and_nothing_is_written(artifacts, step, name, kind, tmp_path):
    bad = _bad_input(artifacts, name, kind, tmp_path)
    out = str(tmp_path / "out")
    with pytest.raises(AptUssError) as raised:
        step({**artifacts, name: bad}, out)
    message = str(raised.value)
    assert bad in message and "\n" not in message
    assert {p.name for p in tmp_path.iterdir()} <= {Path(bad).name}  # no output, nor anything beside it


def test_a_splits_table_without_the_columns_steps_read_names_them(artifacts, tmp_path):
    wrong = tmp_path / "splits.csv"
    shutil.copyfile(Path(artifacts["mixtures"]) / "test_mixtures.csv", wrong)  # a CSV, but another table
    with pytest.raises(AptUssError, match=r"the splits table .* lacks the column\(s\) filename, category, split"):
        _simulate({**artifacts, "splits.csv": str(wrong)}, str(tmp_path / "out"))


def test_mixtures_of_another_dataset_name_the_missing_clip(artifacts, tmp_path):
    other = tmp_path / "other"
    data_steps.fetch_dataset_step("synthetic", str(other), n_classes=2, seed=0)
    clip = next((other / "audio").glob("5-*.wav"))
    clip.unlink()
    with pytest.raises(AptUssError, match=f"has no clip {clip.name}: the splits and mixture tables must come"):
        _evaluate({**artifacts, "dataset": str(other)}, str(tmp_path / "out"))


def _copy_evaluation(source: str, target: Path, edit) -> str:
    shutil.copytree(source, target)
    table = pd.read_csv(target / "per_mixture.csv")
    edit(table)
    table.to_csv(target / "per_mixture.csv", index=False)  # as evaluate_step writes it: NaN as an empty cell
    return str(target)


def test_an_undefined_si_sdr_is_skipped_by_the_scores_not_a_crash(artifacts, tmp_path):
    """A silent estimate has no SI-SDR (NaN, an empty CSV cell); the report and the sweep score around it."""
    def silence_first(table):
        table.loc[0, ["si_sdr", "si_sdri"]] = np.nan

    baseline = _copy_evaluation(artifacts["baseline"], tmp_path / "baseline", silence_first)
    per_mixture, per_class, summary = steps.score_systems(baseline, artifacts["apt"])
    assert np.isnan(per_mixture["si_sdr_baseline"]).sum() == 1
    rest = per_mixture["si_sdr_baseline"].dropna()
    assert summary["si_sdr_baseline_pooled_median"] == pytest.approx(rest.median())
    assert per_class["sdr_baseline_median"].notna().all()


def test_a_score_that_is_not_a_number_is_named(artifacts, tmp_path):
    def garble(table):
        table["sdr"] = table["sdr"].astype(object)
        table.loc[1, "sdr"] = "n/a dB"

    apt = _copy_evaluation(artifacts["apt"], tmp_path / "apt", garble)
    with pytest.raises(AptUssError, match=r"column 'sdr' holds 'n/a dB', not a score"):
        steps.score_systems(artifacts["baseline"], apt)


def test_a_pod_that_asked_for_gpus_and_sees_none_says_so_only_in_kubernetes(monkeypatch, caplog):
    import torch

    cpu = torch.device("cpu")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with caplog.at_level("INFO", logger="apt_uss.steps.pipeline"):
        steps.say_requested_gpus("1", cpu)  # a local runner ignores the request: nothing to say
        assert caplog.records == []
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
        steps.say_requested_gpus("0", cpu)
        assert caplog.records == []
        steps.say_requested_gpus("2", cpu)
    (record,) = caplog.records
    assert record.levelname == "WARNING" and "asked for 2 GPU(s) but sees none: running on the CPU" in record.message


def test_every_step_that_runs_the_backbone_says_what_its_pod_asked_for(artifacts, tmp_path, monkeypatch, caplog):
    """The initial prompts, the audio examples and the sweep's shared embeddings warn, as the evaluation does, when
    their pod asked for a GPU in Kubernetes and runs on the CPU."""
    a = artifacts
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    with caplog.at_level("WARNING"):
        steps.init_prompts_step(a["dataset"], a["splits.csv"], str(tmp_path / "p.npz"), str(tmp_path / "e.npz"),
                                backbone=TINY, requested_gpus="1")
        steps.audio_examples_step(a["dataset"], a["mixtures"], a["initial.npz"], a["tuned.npz"], a["baseline"],
                                  a["apt"], str(tmp_path / "examples"), per_class=1, backbone=TINY, requested_gpus="1")
        sweep_steps.embed_training_clips_step(a["dataset"], str(tmp_path / "all.npz"), backbone=TINY,
                                              requested_gpus="1")
    warned = [r.message for r in caplog.records if "asked for 1 GPU(s) but sees none" in r.message]
    assert len(warned) == 3, caplog.text


def test_a_report_retried_after_a_failed_model_registration_keeps_one_mlflow_run(artifacts, tmp_path, monkeypatch):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    real = steps.log_prompt_model
    calls = []

    def fails_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the registry did not answer")
        return real(*args, **kwargs)

    monkeypatch.setattr(steps, "log_prompt_model", fails_once)
    report = dict(run_params={"dataset": "synthetic"}, run_name="retried-run", tracking_uri=uri, experiment="e",
                  embeddings_path=artifacts["embeddings.npz"])
    with pytest.raises(RuntimeError):
        steps.report_step(artifacts["baseline"], artifacts["apt"], artifacts["initial.npz"], artifacts["tuned.npz"],
                          artifacts["loss.csv"], str(tmp_path / "first"), **report)
    result = steps.report_step(artifacts["baseline"], artifacts["apt"], artifacts["initial.npz"],
                               artifacts["tuned.npz"], artifacts["loss.csv"], str(tmp_path / "second"), **report)
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("e").experiment_id])
    assert run.info.run_id == result["run"]["mlflow_run_id"] and run.info.status == "FINISHED"
    assert [str(v.version) for v in client.search_model_versions("name='apt-uss-synthetic'")] == ["1"]
