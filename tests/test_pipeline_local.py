"""The whole KFP pipeline, run locally the way `make pipeline-run` runs it, on a tiny configuration."""

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from apt_uss.io import storage
from apt_uss.method.prompts import load_prompts
from tests.cli_runner import call_main
from tests.local_runs import TINY_PIPELINE, executor_inputs_folded, run_environment, run_local

ROOT = Path(__file__).resolve().parents[1]
TINY = TINY_PIPELINE


@pytest.fixture
def run_env(s3_env, tmp_path):
    return run_environment(s3_env, tmp_path / "state")


@pytest.mark.slow
@pytest.mark.xdist_group("containers")  # the container test compares its table with this same run's
def test_whole_pipeline_runs_tracks_and_uploads(tiny_pipeline_run, s3_env, tmp_path, monkeypatch):
    result, state = tiny_pipeline_run  # TINY with --artifact-uri s3://apt-pipeline-test/runs, run once per process
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "Per-class median SDR" in out
    # KFP's per-task warnings about cluster settings and images, harmless in every local run, are not shown
    assert "no effect in the current local runner" not in result.stderr and "non-Python base image" not in result.stderr
    # each task's executor input is one line, not its JSON (SHOW_EXECUTOR_INPUT=1 prints it)
    assert executor_inputs_folded(out)
    report = Path(out.split("Report:", 1)[1].split()[0])
    run = json.loads((report / "run.json").read_text())
    summary = json.loads((report / "summary.json").read_text())
    # one printed row per class
    for cls in ("tonal_00", "noise_01", "pulses_02"):
        assert sum(line.split()[:1] == [cls] for line in out.splitlines()) == 1
    # the MLflow run holds params, the stable headline metrics and the tables
    client = mlflow.MlflowClient(f"sqlite:///{state / 'mlflow.db'}")
    mlrun = client.get_run(run["mlflow_run_id"])
    assert mlrun.data.params["n_shot"] == "5" and mlrun.data.params["dataset"] == "synthetic"
    # integers as integers (KFP hands a dict's values as text, "2.0"), booleans as given
    assert mlrun.data.params["epochs"] == "2" and mlrun.data.params["keep_best_epoch"] == "false"
    assert "epochs=2," in (report / "report.html").read_text()
    for name in ("sdr_baseline_pooled_median", "sdr_apt_pooled_median", "sdr_gain_pooled_median",
                 "sdr_baseline_class_mean", "sdr_apt_class_mean", "sdr_gain_class_mean", "classes_improved"):
        assert mlrun.data.metrics[name] == pytest.approx(summary[name])
    # the tuning task logged its loss per epoch into the same run the report finished
    assert sorted(m.step for m in client.get_metric_history(mlrun.info.run_id, "tune_loss")) == [0, 1]
    assert mlrun.data.tags["stage"] == "tuning" and mlrun.info.status == "FINISHED"
    assert len(client.search_runs([mlrun.info.experiment_id])) == 1
    # tables: per mixture (both systems side by side), per class, and a NaN-free summary
    per_mixture = pd.read_csv(report / "per_mixture.csv")
    assert {"mixture_id", "target_class", "interferer_class", "target_file", "interferer_file", "sdr_mixture",
            "sdr_oracle_mask", "sdr_baseline", "sdr_apt", "sdri_baseline", "sdri_apt", "sdr_gain"} <= set(
        per_mixture.columns)
    assert len(per_mixture) == summary["n_mixtures"] and per_mixture.notna().all().all()
    per_class = pd.read_csv(report / "per_class.csv")
    assert list(per_class.columns[:5]) == ["target_class", "n_mixtures", "sdr_baseline_median", "sdr_apt_median",
                                           "sdr_gain"]
    assert summary["sdr_apt_pooled_median"] == pytest.approx(per_mixture["sdr_apt"].median())
    # the ceiling of the separator's output kind, beside the systems it bounds (the tiny model is far below it)
    assert summary["sdr_oracle_mask_pooled_median"] == pytest.approx(per_mixture["sdr_oracle_mask"].median())
    assert (per_class["sdr_oracle_mask_median"] > per_class["sdr_apt_median"]).all()
    assert summary["n_skipped_silent_reference"] == 0
    logged = {a.path for a in client.list_artifacts(mlrun.info.run_id)}
    assert {"prompts_initial.npz", "prompts_tuned.npz", "per_class.csv", "per_mixture.csv"} <= logged
    # the prompts read back from SeaweedFS are the run's prompts
    for key in s3_env:
        monkeypatch.setenv(key, s3_env[key])
    back, targets, names = load_prompts(storage.download(run["s3"]["prompts_tuned.npz"], tmp_path / "p.npz"))
    local, _, _ = load_prompts(report / "prompts_tuned.npz")
    initial, _, _ = load_prompts(report / "prompts_initial.npz")
    np.testing.assert_array_equal(back, local)
    assert back.shape == (3, 16) and list(names) == ["tonal_00", "noise_01", "pulses_02"]
    assert not np.array_equal(back, initial)  # tuning moved the prompts
    # the per-epoch tuning state sits beside the run's artifacts, where a retried task finds it
    tune_state = storage.download(run["s3"]["summary.json"].rsplit("/", 1)[0] + "/tune-state/tune_state.pt",
                                  tmp_path / "state.pt")
    import torch
    saved = torch.load(tune_state, weights_only=True)
    np.testing.assert_array_equal(saved["prompts"].numpy(), local)
    # results people can see: per-class metrics under stable names, figures, audio examples, the HTML page
    for cls in ("tonal_00", "noise_01", "pulses_02"):
        row = per_class[per_class["target_class"] == cls].iloc[0]
        assert mlrun.data.metrics[f"sdr_gain/{cls}"] == pytest.approx(row["sdr_gain"])
        assert mlrun.data.metrics[f"sdr_apt_median/{cls}"] == pytest.approx(row["sdr_apt_median"])
    assert mlrun.data.tags["backbone"] == "tiny" and mlrun.data.tags["n_shot"] == "5"
    examples = pd.read_csv(report / "examples" / "examples.csv")
    assert examples.groupby("target_class").size().to_dict() == {"noise_01": 2, "pulses_02": 2, "tonal_00": 2}
    import soundfile as sf
    for kind in ("mixture", "reference", "baseline", "apt"):
        for rel in examples[kind]:
            assert sf.info(report / "examples" / rel).frames == 5 * 32000
    page = (report / "report.html").read_text()
    assert page.count("<audio ") == 4 * len(examples) and page.count("<img ") == 4  # with the spectrograms
    assert "<title>APT vs baseline on synthetic, 5-shot, tiny backbone</title>" in page
    assert {"report.html", "figures/class_gains.png", "figures/prompt_map.png", "figures/tune_loss.png",
            "examples/examples.csv"} <= set(run["s3"])
    assert sum(k.startswith("examples/audio/") for k in run["s3"]) == 4 * len(examples)
    logged_html = {a.path for a in client.list_artifacts(mlrun.info.run_id)}
    assert {"report.html", "figures", "examples"} <= logged_html
    # the tuned prompts, registered with their backbone under the dataset's default name and linked to the run
    assert run["model"]["registered_uri"] == "models:/apt-uss-synthetic/1"
    assert client.get_model_version("apt-uss-synthetic", "1").run_id == mlrun.info.run_id
    from apt_uss.serving import load_separator
    registered = load_separator("models:/apt-uss-synthetic/1", tracking_uri=f"sqlite:///{state / 'mlflow.db'}")
    assert registered.backbone.name == "tiny" and registered.classes == ["tonal_00", "noise_01", "pulses_02"]
    np.testing.assert_array_equal(registered.prompts, local)
    assert "Open the HTML report" in mlrun.data.tags["mlflow.note.content"]


@pytest.mark.slow
def test_a_failing_step_fails_the_run_with_one_line(run_env, tmp_path):
    empty = tmp_path / "not-esc50"
    empty.mkdir()
    result = run_local(TINY + ["--dataset", "esc50", "--dataset-uri", str(empty)], run_env)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("error: the pipeline failed")
    assert "Inner task failed: 'fetch-dataset'" in result.stderr.splitlines()[-1]
    assert "no meta/esc50.csv found in" in result.stdout + result.stderr  # the task's own log
    assert "Retrying in" not in result.stdout + result.stderr  # at once: no cluster retry's backoff locally
    assert "Per-class" not in result.stdout


def _run_in_process(args, env, monkeypatch, capsys):
    """``python -m pipelines.run_local ARGS`` in this interpreter, under ``env`` (its imports paid once
    for all the probes below): (exit code, stdout, stderr)."""
    from pipelines import run_local

    for key in [k for k in os.environ if k not in env]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return call_main(run_local.main, args, capsys)


BAD_INPUT = [
    (["--n-shot", "0"], "n_shot='0' is not valid"),
    (["--n-shot", "25"], "n_shot=25 is larger than the 24 training clips per class of synthetic"),
    (["--n-shot", "101", "--dataset", "musdb18", "--dataset-uri", "/x"],
     "n_shot=101 is larger than the 100 training tracks"),
    (["--dataset", "musdb18"], "dataset=musdb18 needs dataset_uri"),
    (["--dataset-sha256", "xyz"], "dataset_sha256='xyz' is not valid"),
    (["--n-shot", "five"], "n_shot='five' is not valid"),
    (["--dataset", "audioset"], "dataset='audioset' is unknown: allowed are synthetic, debian_sounds, esc50"),
    (["--tracking-uri", "http://127.0.0.1:9"], "tracking URI http://127.0.0.1:9 does not answer"),
    (["--audio-examples-per-class", "-1"], "audio_examples_per_class=-1 is not valid"),
    (["--lr-schedule", "step"], "lr_schedule='step' is unknown: allowed are constant, cosine"),
    (["--loss-function", "mse"], "loss_function='mse' is unknown: allowed are l1, snr"),
    (["--crop-rule", "quiet"], "crop_rule='quiet' is unknown: allowed are random, loud"),
]


@pytest.mark.parametrize("args, message", BAD_INPUT)
def test_bad_input_is_one_error_line_and_nonzero_exit(run_env, args, message, monkeypatch, capsys):
    code, _, err = _run_in_process(args, run_env, monkeypatch, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1]
    assert "Traceback" not in err


def test_bad_input_through_the_command_line_is_one_error_line_and_exit_code_2(run_env):
    """The same refusal as above, through the real entry point (the probes run main() in-process)."""
    args, message = BAD_INPUT[0]
    result = run_local(args, run_env, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1] and "Traceback" not in result.stderr


def test_wrong_s3_keys_and_dead_endpoint_are_named(run_env, monkeypatch, capsys):
    bad_key = dict(run_env, AWS_SECRET_ACCESS_KEY="wrong-secret-123")
    code, out, err = _run_in_process([], bad_key, monkeypatch, capsys)
    assert code == 2 and "rejected the credentials" in err
    assert "wrong-secret-123" not in err + out
    dead = dict(run_env, AWS_ENDPOINT_URL="http://127.0.0.1:9")
    code, _, err = _run_in_process([], dead, monkeypatch, capsys)
    assert code == 2 and "S3 endpoint http://127.0.0.1:9 does not answer" in err


def test_cli_step_reports_bad_input_in_one_line(tmp_path, tiny_dataset):
    result = subprocess.run([sys.executable, "-m", "apt_uss", "split-folds", "--dataset-dir", str(tiny_dataset),
                             "--n-shot", "-1", "--out", str(tmp_path / "s.csv")],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: n_shot='-1' is not valid: it must be at least 1, or 'full'"
    assert not (tmp_path / "s.csv").exists()


@pytest.mark.slow
def test_pipeline_on_an_esc50_archive_served_over_https_like_url(run_env, tmp_path):
    """fetch (download + checksum + extract + convert), split and mixtures on ESC-50's layout, in the DAG."""
    import functools
    import hashlib
    import http.server
    import threading

    from test_dataset_ingest import _mini_esc50, _zip_dir

    _mini_esc50(tmp_path / "src")
    served = tmp_path / "www"
    served.mkdir()
    archive = _zip_dir(tmp_path / "src", served / "ESC-50-master.zip")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = dict(run_env, APT_USS_CACHE=str(tmp_path / "cache"))
        uri = f"http://127.0.0.1:{server.server_address[1]}/ESC-50-master.zip"
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        # the mini archive's clips are 0.5 s: a longer training crop is refused at the mixture step
        result = run_local(["--backbone", "tiny", "--random-weights", "--epochs", "2", "--n-shot", "1",
                            "--dataset", "esc50", "--dataset-uri", uri, "--dataset-sha256", digest,
                            "--artifact-uri", "", "--crop-seconds", "0.5"], env)
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr[-3000:]
    report = Path(result.stdout.split("Report:", 1)[1].split()[0])
    per_mixture = (report / "per_mixture.csv").read_text().splitlines()
    assert len(per_mixture) == 1 + 4  # 2 classes x 2 test clips (folds 4, 5), each the target once
    assert {line.split(",")[1] for line in per_mixture[1:]} == {"dog", "rain"}
    assert (tmp_path / "cache" / "sha256" / digest / "ESC-50-master.zip").is_file()


@pytest.mark.slow
def test_pipeline_on_a_musdb18_hq_archive(run_env, tmp_path):
    """MUSDB18-HQ layout as a tar.gz: stems against the track's own mixture, per-track medians, in the DAG."""
    import tarfile

    from test_musdb import make_musdb_hq

    root = make_musdb_hq(tmp_path / "src" / "musdb18hq")
    archive = tmp_path / "musdb18hq.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(root, arcname="musdb18hq")
    env = dict(run_env, APT_USS_CACHE=str(tmp_path / "cache"))
    result = run_local(["--backbone", "tiny", "--random-weights", "--epochs", "1", "--n-shot", "2",
                        "--dataset", "musdb18", "--dataset-uri", archive.as_uri(), "--artifact-uri", ""], env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = Path(result.stdout.split("Report:", 1)[1].split()[0])
    per_class = pd.read_csv(report / "per_class.csv")
    assert sorted(per_class["target_class"]) == ["bass", "drums", "other", "vocals"]
    # medians over tracks: 2 test tracks per stem, 1 for vocals (the instrumental has none)
    assert dict(zip(per_class["target_class"], per_class["n_mixtures"])) == {
        "bass": 2, "drums": 2, "other": 2, "vocals": 1}
    per_mixture = pd.read_csv(report / "per_mixture.csv")
    assert len(per_mixture) == 7 * 2 and per_mixture["track"].nunique() == 2
