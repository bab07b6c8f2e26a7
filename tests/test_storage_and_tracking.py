import json
import os

import mlflow
import numpy as np
import pandas as pd
import pytest

from apt_uss.errors import AptUssError
from apt_uss.io import storage, tracking
from apt_uss.method.prompts import load_prompts, save_prompts


def test_prompts_round_trip_through_seaweedfs(s3_env, tmp_path):
    prompts = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    save_prompts(tmp_path / "p.npz", prompts, np.array([0, 1, 2]), np.array(["a", "b", "c"]))
    storage.ensure_bucket("s3://apt-test/runs")
    uris = storage.upload_run_files("s3://apt-test/runs", "run-1", {"prompts_tuned.npz": tmp_path / "p.npz"})
    assert uris == {"prompts_tuned.npz": "s3://apt-test/runs/run-1/prompts_tuned.npz"}
    got, targets, names = load_prompts(storage.download(uris["prompts_tuned.npz"], tmp_path / "back.npz"))
    np.testing.assert_array_equal(got, prompts)
    assert list(names) == ["a", "b", "c"]
    manifest = json.loads(storage.download("s3://apt-test/runs/run-1/manifest.json", tmp_path / "m.json").read_text())
    assert manifest["files"] == uris


def test_wrong_secret_is_one_clear_error_without_the_secret(s3_env, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-xyz")
    with pytest.raises(AptUssError) as err:
        storage.ensure_bucket("s3://apt-test")
    assert "rejected the credentials" in str(err.value)
    assert "not-the-secret-xyz" not in str(err.value) and s3_env["AWS_ACCESS_KEY_ID"] not in str(err.value)


def test_unreachable_endpoint_is_named(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    with pytest.raises(AptUssError, match=r"S3 endpoint http://127.0.0.1:9 does not answer"):
        storage.ensure_bucket("s3://apt-test")


def test_bad_artifact_uri():
    with pytest.raises(AptUssError, match="artifact_uri='bucket/x'"):
        storage.parse_s3_uri("bucket/x")


def test_run_is_logged_with_stable_metric_names(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    (tmp_path / "art").mkdir()
    (tmp_path / "art" / "per_class.csv").write_text("target_class\n")
    metrics = {"sdr_baseline_pooled_median": 1.0, "sdr_apt_pooled_median": 2.0, "classes_improved": 3}
    loss = pd.DataFrame({"epoch": [0, 1], "loss": [0.5, 0.4]})
    run_id = tracking.log_run(uri, "exp", "r1", {"n_shot": "5", "dataset": "synthetic", "seed": 0}, metrics,
                              loss_history=loss, artifacts_dir=tmp_path / "art", tags={"n_shot": "5"})
    run = mlflow.MlflowClient(uri).get_run(run_id)
    assert run.data.metrics["sdr_apt_pooled_median"] == 2.0 and run.data.params["n_shot"] == "5"
    assert run.data.tags["n_shot"] == "5" and run.info.status == "FINISHED"
    history = mlflow.MlflowClient(uri).get_metric_history(run_id, "tune_loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.5), (1, 0.4)]
    assert [a.path for a in mlflow.MlflowClient(uri).list_artifacts(run_id)] == ["per_class.csv"]
    # artifacts live beside the sqlite store, not in the working directory
    assert (tmp_path / "mlartifacts").is_dir()


def test_tracking_uri_that_does_not_answer(monkeypatch):
    with pytest.raises(AptUssError, match=r"tracking URI http://127.0.0.1:9 does not answer"):
        tracking.check_tracking("http://127.0.0.1:9")


def test_redact_hides_userinfo_and_query_strings():
    from apt_uss.io.uris import redact

    assert redact("https://bob:hunter2@mlflow.example/x") == "https://***@mlflow.example/x"
    assert redact("https://bob:p@ss@host/x.zip") == "https://***@host/x.zip"  # urllib splits at the last @
    assert redact("https://host/v1@2/x.zip") == "https://host/v1@2/x.zip"  # an @ in the path is no password
    assert redact("https://h.example/w.ckpt?X-Amz-Signature=abc&y=1") == "https://h.example/w.ckpt?***"
    assert redact("s3://bucket/key.ckpt") == "s3://bucket/key.ckpt"
    assert redact("synthetic://?n_classes=10&seed=0") == "synthetic://?n_classes=10&seed=0"  # what a dataset is


def test_live_loss_and_results_land_in_one_run_found_by_name(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = tracking.open_run(uri, "exp", "pipeline-run-7", tags={"stage": "tuning"})
    log_epoch = tracking.EpochLossLogger(uri, run_id)
    log_epoch(0, 0.5)
    log_epoch(1, 0.4)
    assert tracking.open_run(uri, "exp", "pipeline-run-7") == run_id  # a retried task finds the same run
    assert tracking.open_run(uri, "exp", "another-run") != run_id
    loss = pd.DataFrame({"epoch": [0, 1], "loss": [0.5, 0.4]})
    assert tracking.log_run(uri, "exp", "pipeline-run-7", {"n_shot": "5"}, {"sdr_apt_pooled_median": 2.0},
                            loss_history=loss) == run_id
    history = mlflow.MlflowClient(uri).get_metric_history(run_id, "tune_loss")
    assert sorted((m.step, m.value) for m in history) == [(0, 0.5), (1, 0.4)]  # not logged twice
    # a finished run is never reopened: a new pipeline run of the same name gets a run of its own
    assert tracking.open_run(uri, "exp", "pipeline-run-7") != run_id


def test_a_retry_after_a_failed_attempt_reopens_the_run(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = tracking.open_run(uri, "exp", "run-8")
    tracking.EpochLossLogger(uri, run_id).mark_failed()
    assert tracking.open_run(uri, "exp", "run-8") == run_id
    assert mlflow.MlflowClient(uri).get_run(run_id).info.status == "RUNNING"
    with pytest.raises(AptUssError, match="may not contain quotes"):
        tracking.open_run(uri, "exp", "bob's run")


@pytest.mark.parametrize("where", ["local", "s3"])
def test_tuning_state_round_trips_and_refuses_other_computations(where, s3_env, tmp_path):
    import torch

    from apt_uss.method.tuning_state import EpochState

    uri = str(tmp_path / "state") if where == "local" else "s3://apt-test/runs/run-9/tune-state"
    if where == "s3":
        storage.ensure_bucket(uri)
    assert EpochState(uri, "abc").load() is None  # nothing saved yet: start at epoch 1
    EpochState(uri, "abc").save({"prompts": torch.ones(2, 3), "history": torch.zeros(1, 3)})
    loaded = EpochState(uri, "abc").load()
    assert torch.equal(loaded["prompts"], torch.ones(2, 3)) and loaded["fingerprint"] == "abc"
    assert EpochState(uri, "other-inputs").load() is None


def test_few_shot_table_takes_the_latest_matching_run_per_n_shot(tmp_path):
    from apt_uss.results.sweep import few_shot_table, format_few_shot_table

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    def run(name, n_shot, epochs, apt):
        metrics = {"sdr_baseline_pooled_median": 1.0, "sdr_apt_pooled_median": apt, "sdr_gain_pooled_median": apt - 1,
                   "sdr_baseline_class_mean": 1.0, "sdr_apt_class_mean": apt, "sdr_gain_class_mean": apt - 1,
                   "classes_improved": 3, "n_classes": 4}
        tracking.log_run(uri, "sweep", name, {"n_shot": n_shot, "epochs": epochs, "backbone": "demo"}, metrics)
    run("old-5", "5", 20, 9.0)
    run("full", "full", 20, 4.0)
    run("other-settings", "1", 50, 7.0)  # another sweep's run: left out
    run("other-settings-10", "10", 50, 8.0)  # the only 10-shot run, of other settings: left out, and said
    run("new-5", "5", 20, 3.0)
    run("one", "1", 20, 2.0)
    table = few_shot_table(uri, "sweep")
    assert list(table["n_shot"]) == ["1", "5", "full"]
    assert list(table["apt_pooled"]) == [2.0, 3.0, 4.0]
    text = format_few_shot_table(table)
    assert "classes improved" in text and "3/4" in text
    (left_out,) = [line for line in text.splitlines() if line.startswith("left out:")]  # said, not mixed in
    assert "(n_shot 10) differs from the latest run in epochs" in left_out
    with pytest.raises(AptUssError, match="does not exist"):
        few_shot_table(uri, "no-such-experiment")


def _no_aws_environment(monkeypatch, home):
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "no-credentials"))  # not ~/.aws either
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "no-config"))
    monkeypatch.setenv("APT_USS_HOME", str(home))


def test_s3_uris_find_the_local_servers_keys_as_the_pipeline_does(s3_server, tmp_path, monkeypatch):
    """With no AWS_* variables (a plain shell), commands read the local server's file that `make s3-up` writes."""
    from apt_uss.io.download import fetch_uri

    home = tmp_path / "state"
    (home / "s3").mkdir(parents=True)
    (home / "s3" / "s3.env").write_text("".join(f"{k}={v}\n" for k, v in s3_server.items()))
    _no_aws_environment(monkeypatch, home)
    save_prompts(tmp_path / "p.npz", np.ones((2, 4), np.float32), np.array([0, 1]), np.array(["a", "b"]))
    storage.ensure_bucket("s3://apt-local-keys")
    uris = storage.upload_run_files("s3://apt-local-keys/runs", "r1", {"prompts_tuned.npz": tmp_path / "p.npz"})
    monkeypatch.setenv("APT_USS_CACHE", str(tmp_path / "cache"))
    _, _, names = load_prompts(fetch_uri(uris["prompts_tuned.npz"], what="prompts"))
    assert list(names) == ["a", "b"]


def test_no_s3_credentials_says_where_the_local_servers_keys_would_be(tmp_path, monkeypatch):
    _no_aws_environment(monkeypatch, tmp_path / "state")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    with pytest.raises(AptUssError) as err:
        storage.ensure_bucket("s3://apt-test")
    assert "no S3 credentials" in str(err.value) and str(tmp_path / "state" / "s3" / "s3.env") in str(err.value)


def test_mlflow_runs_open_on_the_runs_table_with_integer_parameters_and_a_report_link(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    summary = {"sdr_baseline_pooled_median": 2.0, "sdr_apt_pooled_median": 4.5, "sdr_gain_pooled_median": 2.5,
               "classes_improved": 9, "n_classes": 10}
    params = {"epochs": 20.0, "seed": 0.0, "lr": 0.01, "n_shot": "5", "dataset": "debian_sounds",
              "backbone": "demo", "keep_best_epoch": False}
    run_id = tracking.log_run(uri, "kinds", "r", params, summary)
    tracking.set_description(uri, run_id, tracking.run_description(run_id, summary, params))
    client = mlflow.MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.data.params["epochs"] == "20" and run.data.params["seed"] == "0" and run.data.params["lr"] == "0.01"
    assert run.data.params["keep_best_epoch"] == "false"
    assert client.get_experiment_by_name("kinds").tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"
    note = run.data.tags[tracking.NOTE_TAG]
    assert "2.00 dB" in note and "4.50 dB" in note and "9 of 10 classes" in note
    assert f"get-artifact?path=report.html&run_uuid={run_id}" in note
    # an experiment made elsewhere without the kind gets it when a run is logged to it
    client.create_experiment("made-elsewhere")
    tracking.log_run(uri, "made-elsewhere", "r2", {}, summary)
    assert client.get_experiment_by_name("made-elsewhere").tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"


def test_with_mlflow_run_id_set_a_sweeps_cells_nest_under_that_run_instead_of_collapsing_into_it(tmp_path, monkeypatch):
    # KFP's MLflow integration sets MLFLOW_RUN_ID to the pipeline run's own MLflow run in every task.
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    # KFP's run may sit in another experiment than the one the pipeline names: the cells go in the parent's.
    kfp_experiment = client.create_experiment("kfp-experiment")
    kfp_run = client.create_run(kfp_experiment).info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", kfp_run)
    # a single pipeline run (or the sweep's parent) is that run
    assert tracking.open_run(uri, "exp", "pipeline-run-9") == kfp_run
    # each cell's tuning task opens a run of its own, nested under it
    cells = {name: tracking.open_run(uri, "exp", name, tags={"stage": "tuning"}, nested=True)
             for name in ("sweep-1shot-s1", "sweep-5shot-s1")}
    assert len(set(cells.values()) | {kfp_run}) == 3
    assert all(client.get_run(c).data.tags[tracking.PARENT_TAG] == kfp_run for c in cells.values())
    assert all(client.get_run(c).info.experiment_id == kfp_experiment for c in cells.values())
    # the aggregate step finds the parent and logs each cell into the cell's own run, then the parent
    parent = tracking.open_run(uri, "exp", "sweep")
    assert parent == kfp_run
    for name, run_id in cells.items():
        assert tracking.log_run(uri, "exp", name, {"n_shot": name[6]}, {"sdr_gain": 1.0},
                                tags={tracking.PARENT_TAG: parent}) == run_id
    assert tracking.finished_children(uri, "exp", parent) == cells
    assert tracking.log_run(uri, "exp", "sweep", {"seeds": "1"}, {"sdr_gain_mean": 1.0}) == kfp_run
    assert client.get_run(kfp_run).data.params == {"seeds": "1"}  # the cells' parameters stayed in the cells


def test_recorded_values_give_integers_as_integers_and_hide_secrets_in_uris(tmp_path):
    given = {"epochs": "20.0", "batch_size": 4.0, "lr": "0.03", "keep_best_epoch": "false", "n_shot": "5",
             "dataset_uri": "https://u:pw@host/ds.zip?X-Amz-Signature=SIG", "artifact_uri": "s3://apt-uss/runs",
             "not_a_parameter": "7.0"}
    assert tracking.recorded_values({"epochs": "all"}) == {"epochs": "all"}  # recorded as given, not checked here
    recorded = tracking.recorded_values(given)
    assert recorded == {"epochs": 20, "batch_size": 4, "lr": "0.03", "keep_best_epoch": "false", "n_shot": "5",
                        "dataset_uri": "https://***@host/ds.zip?***", "artifact_uri": "s3://apt-uss/runs",
                        "not_a_parameter": "7.0"}
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = tracking.log_run(uri, "exp", "run-1", recorded, {"x": 1.0})
    params = mlflow.MlflowClient(uri).get_run(run_id).data.params
    assert params["epochs"] == "20" and "SIG" not in str(params) and "pw" not in str(params)


def test_a_run_name_taken_by_another_kubeflow_run_is_refused_and_a_retry_is_not(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = tracking.open_run(uri, "exp", "my-run", tags={tracking.KFP_RUN_TAG: "kfp-1", "stage": "tuning"})
    # the same Kubeflow run (a retried task, then the report) finds its own run again
    assert tracking.open_run(uri, "exp", "my-run", tags={tracking.KFP_RUN_TAG: "kfp-1"}) == first
    tracking.end_run(uri, first)
    for owner in ("kfp-2",):  # a clone left unrenamed, while the first is open or after it finished
        with pytest.raises(AptUssError, match=r"the run name 'my-run' is taken: MLflow experiment 'exp' holds a run "
                                              r"of that name from another pipeline run \(KFP run kfp-1\)"):
            tracking.open_run(uri, "exp", "my-run", tags={tracking.KFP_RUN_TAG: owner})
    # without a Kubeflow run id (a step called by hand, an older run) nothing is refused
    assert tracking.open_run(uri, "exp", "my-run") != first


def test_a_sweep_named_as_another_kubeflow_runs_run_stops_at_its_plan_before_any_cell(tmp_path, monkeypatch):
    from apt_uss.steps.sweep import plan_sweep_step

    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking.end_run(uri, tracking.open_run(uri, "exp", "my-run", tags={tracking.KFP_RUN_TAG: "kfp-1"}))
    plan = dict(sweep_shots="1,5", seeds="1", run_name="my-run", tracking_uri=uri, experiment="exp")
    with pytest.raises(AptUssError, match=r"the run name 'my-run' is taken: .* \(KFP run kfp-1\)"):
        plan_sweep_step(**plan, kfp_run_id="kfp-2")
    # the same Kubeflow run (a retried plan), a free name, another experiment, or no run id: the cells
    assert len(plan_sweep_step(**plan, kfp_run_id="kfp-1")) == 2
    assert len(plan_sweep_step(**{**plan, "run_name": "other"}, kfp_run_id="kfp-2")) == 2
    assert len(plan_sweep_step(**{**plan, "experiment": "new"}, kfp_run_id="kfp-2")) == 2
    assert len(plan_sweep_step(**plan)) == 2
    # KFP's MLflow integration names the run (MLFLOW_RUN_ID): the aggregate takes that run and refuses no name
    monkeypatch.setenv("MLFLOW_RUN_ID", "abc")
    assert len(plan_sweep_step(**plan, kfp_run_id="kfp-2")) == 2
    monkeypatch.delenv("MLFLOW_RUN_ID")
    # a name MLflow's filter cannot hold: one line, before any cell (KFP display names are free text)
    with pytest.raises(AptUssError, match=r"run name \"John's sweep\" may not contain quotes or backslashes"):
        plan_sweep_step(**{**plan, "run_name": "John's sweep"}, kfp_run_id="kfp-2")
    # the check reads the store and makes nothing: no experiment "new", no second run of the name
    client = mlflow.MlflowClient(uri)
    assert client.get_experiment_by_name("new") is None
    assert len(client.search_runs([client.get_experiment_by_name("exp").experiment_id])) == 1
