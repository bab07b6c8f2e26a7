"""Using what APT learned: the Python API, prompt files that carry their backbone, the logged and registered
MLflow model (loaded by URI, separated with from the command line, served over HTTP), and the CLI's help."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from apt_uss.errors import AptUssError
from apt_uss.method.prompts import load_prompt_backbone, save_prompts
from apt_uss.models.backbone import BackboneSpec
from apt_uss.models.config import get_config
from apt_uss.serving import load_separator
from apt_uss.serving.mlflow_model import decode_audio, encode_audio, log_prompt_model

ROOT = Path(__file__).resolve().parents[1]
TINY = BackboneSpec("tiny", random_weights=True)


def _prompt_file(path, spec: BackboneSpec = TINY, names=("dog", "rain")) -> Path:
    """Prompts as the pipeline writes them: with the backbone's provenance and its parameters."""
    model = spec.load()
    prompts = np.random.default_rng(0).normal(size=(len(names), model.cfg.embed_dim)).astype(np.float32)
    save_prompts(path, prompts, np.arange(len(names)), np.array(names), provenance=model.provenance,
                 backbone=spec.record())
    return Path(path)


def test_the_api_separates_any_rate_and_channels_with_the_backbone_the_prompts_record(tmp_path):
    path = _prompt_file(tmp_path / "p.npz")
    assert load_prompt_backbone(path) == TINY.record()
    separator = load_separator(str(path))  # no backbone given: the recorded tiny one, on its seeded weights
    assert separator.backbone.name == "tiny" and separator.classes == ["dog", "rain"]
    rng = np.random.default_rng(1)
    stereo = rng.uniform(-0.3, 0.3, (22050 * 7 + 3, 2)).astype(np.float32)
    out = separator.separate(stereo, 22050, "rain")
    assert out.shape == stereo.shape and out.dtype == np.float32 and np.isfinite(out).all()
    mono = separator.separate(stereo[:, 0], 22050, "rain")
    assert mono.shape == (len(stereo),)
    # channel 0 alone gives channel 0 of the stereo result: channels are separated independently
    np.testing.assert_allclose(mono, out[:, 0], rtol=1e-5, atol=1e-6)
    # the prompt matters: another class gives another estimate
    assert np.abs(separator.separate(stereo[:, 0], 22050, "dog") - mono).max() > 1e-4
    with pytest.raises(AptUssError, match="class 'cat' is not in the prompts .*: it has dog, rain"):
        separator.separate(mono, 22050, "cat")
    with pytest.raises(AptUssError, match=r"waveform of shape \(2, 3, 4\) is not valid"):
        separator.separate(np.zeros((2, 3, 4)), 22050, "dog")


def test_prompts_used_with_other_weights_are_an_error_naming_both(tmp_path):
    path = _prompt_file(tmp_path / "p.npz")
    with pytest.raises(AptUssError) as err:
        load_separator(str(path), backbone={"backbone_seed": 3})  # the recorded config, other random weights
    assert "backbone 'tiny' (SED random:0, separator random:0)" in str(err.value)
    assert "separator random:3" in str(err.value)
    with pytest.raises(AptUssError, match=r"made with backbone 'tiny' .* not with backbone 'demo' .*sha256:"):
        load_separator(str(path), backbone="demo")


def test_a_prompt_file_from_before_the_record_uses_the_backbone_given(tmp_path):
    dim = get_config("tiny").embed_dim
    save_prompts(tmp_path / "old.npz", np.zeros((1, dim), np.float32), np.array([0]), np.array(["dog"]))
    assert load_separator(str(tmp_path / "old.npz"), backbone={"backbone": "tiny", "random_weights": True}).classes \
        == ["dog"]


def test_a_recording_shorter_than_one_window_is_separated_and_a_tiny_window_is_refused(tmp_path):
    separator = load_separator(str(_prompt_file(tmp_path / "p.npz")))
    for samples, rate in ((200, 32000), (300, 44100), (1, 16000), (2, 8000)):
        audio = np.random.default_rng(samples).uniform(-0.3, 0.3, (samples, 2)).astype(np.float32)
        out = separator.separate(audio, rate, "rain")
        assert out.shape == audio.shape and np.isfinite(out).all()
    with pytest.raises(AptUssError, match=r"chunk_seconds=0.001 is too short: backbone 'tiny' separates windows of"):
        separator.separate(np.zeros(32000, np.float32), 32000, "rain", chunk_seconds=0.001)


class _Louder:
    """A stand-in separator whose estimate is the input times ``gain``: what a mask above the mixture can give."""

    backbone = TINY

    def __init__(self, gain):
        self.gain = gain

    def separate(self, audio, rate, class_name, chunk_seconds, overlap):
        return audio * self.gain


def test_an_estimate_above_full_scale_is_written_as_float_or_refused_never_clipped(tmp_path):
    from apt_uss.serving.separator import separate_file

    audio = np.linspace(-0.9, 0.9, 16000, dtype=np.float32)
    sf.write(tmp_path / "in.wav", audio, 16000, subtype="PCM_16")
    separate_file(_Louder(1.5), "rain", tmp_path / "in.wav", tmp_path / "out.wav")
    written, _ = sf.read(tmp_path / "out.wav", dtype="float32")
    assert sf.info(str(tmp_path / "out.wav")).subtype == "FLOAT" and written.max() == pytest.approx(1.35, abs=1e-3)
    with pytest.raises(AptUssError, match=r"out.flac: the estimate peaks at 1.350, above full scale, and FLAC"):
        separate_file(_Louder(1.5), "rain", tmp_path / "in.wav", tmp_path / "out.flac")
    assert not (tmp_path / "out.flac").exists()
    separate_file(_Louder(0.5), "rain", tmp_path / "in.wav", tmp_path / "quiet.flac")  # within full scale: as given
    assert sf.info(str(tmp_path / "quiet.flac")).subtype == "PCM_16"


def test_a_model_that_does_not_load_leaves_no_temporary_folder(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    with pytest.raises(AptUssError, match="cannot load model models:/no-such-model/1"):
        load_separator("models:/no-such-model/1", tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert list((tmp_path / "tmp").iterdir()) == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_registered_model_loads_by_uri_separates_from_the_cli_and_answers_http(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri, registry_uri=uri)  # not the registry an earlier test set globally
    run_id = client.create_run(client.create_experiment("t", artifact_location=(tmp_path / "art").as_uri())).info.run_id
    client.set_terminated(run_id)
    model = log_prompt_model(uri, run_id, _prompt_file(tmp_path / "p.npz"), "apt-uss-test")
    assert model["registered_uri"] == "models:/apt-uss-test/1" and model["run_model_uri"] == f"runs:/{run_id}/model"
    version = client.get_model_version("apt-uss-test", "1")
    assert version.run_id == run_id  # linked to its run
    audio = np.random.default_rng(2).uniform(-0.3, 0.3, (16000 * 3, 2)).astype(np.float32)
    direct = load_separator(str(tmp_path / "p.npz")).separate(audio, 16000, "rain")
    for model_uri in (model["registered_uri"], model["run_model_uri"]):
        np.testing.assert_allclose(load_separator(model_uri, tracking_uri=uri).separate(audio, 16000, "rain"),
                                   direct, rtol=1e-5, atol=1e-6)
    with pytest.raises(AptUssError, match="cannot load model models:/apt-uss-test/7"):
        load_separator("models:/apt-uss-test/7", tracking_uri=uri)

    # the command line, by model URI
    sf.write(tmp_path / "in.wav", audio, 16000, subtype="FLOAT")
    done = subprocess.run([sys.executable, "-m", "apt_uss", "separate", "--model", "models:/apt-uss-test/1",
                           "--class", "rain", "--tracking-uri", uri, str(tmp_path / "in.wav"),
                           str(tmp_path / "out.wav")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    cli_out, rate = sf.read(tmp_path / "out.wav", dtype="float32", always_2d=True)
    assert rate == 16000
    np.testing.assert_allclose(cli_out, direct, rtol=1e-5, atol=1e-6)

    # mlflow models serve, on loopback: one real HTTP request with a WAV in, the separated WAV out
    port = _free_port()
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    server = subprocess.Popen([shutil.which("mlflow", path=env["PATH"]), "models", "serve", "-m",
                               "models:/apt-uss-test/1", "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                assert server.poll() is None, server.stdout.read().decode()[-3000:]
                assert time.monotonic() < deadline, "mlflow models serve did not answer in 180 s"
                time.sleep(1)
        body = {"dataframe_split": {"columns": ["class_name", "audio_wav_base64"],
                                    "data": [["rain", encode_audio(audio, 16000)]]}}
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        answer = json.loads(urllib.request.urlopen(request, timeout=120).read())
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
    served, served_rate = decode_audio(answer["predictions"][0]["audio_wav_base64"])
    assert served_rate == 16000
    np.testing.assert_allclose(served, direct, rtol=1e-5, atol=1e-6)


def test_the_model_refuses_input_without_its_columns(tmp_path):
    from apt_uss.serving.mlflow_model import separate_rows

    separator = load_separator(str(_prompt_file(tmp_path / "p.npz")))
    with pytest.raises(AptUssError, match="lacks column.* audio_wav_base64"):
        separate_rows(separator, pd.DataFrame({"class_name": ["dog"]}))
    with pytest.raises(AptUssError, match="row 0: audio_wav_base64 is not a base64-encoded WAV"):
        separate_rows(separator, pd.DataFrame({"class_name": ["dog"], "audio_wav_base64": ["bm90IGF1ZGlv"]}))


def test_help_needs_no_torch_mlflow_or_pandas_and_shows_defaults():
    code = ("import sys\nfrom apt_uss.cli import main\n"
            "try:\n    main(['separate', '--help'])\nexcept SystemExit:\n    pass\n"
            "print([m for m in ('torch', 'mlflow', 'pandas') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, COLUMNS="200"))  # one help line per option
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert "(default: 0.5)" in done.stdout and "models:/<name>/<version>" in done.stdout


def test_onnx_export_matches_pytorch_with_a_dynamic_batch(tmp_path):
    import onnxruntime

    from apt_uss.serving.onnx_export import export_onnx

    clip = np.random.default_rng(4).uniform(-0.3, 0.3, (44100 * 3, 2)).astype(np.float32)
    sf.write(tmp_path / "clip.wav", clip, 44100)
    card = export_onnx(str(_prompt_file(tmp_path / "p.npz")), "rain", str(tmp_path / "rain.onnx"), seconds=1.0,
                       check_audio=str(tmp_path / "clip.wav"))
    assert card["inputs"] == {"mixture": ["batch", 32000]} and card["opset"] == 17
    assert card["check"]["audio"] == str(tmp_path / "clip.wav") and card["check"]["max_abs_difference"] < 1e-4
    assert json.loads((tmp_path / "rain.onnx.json").read_text())["class"] == "rain"
    # the graph holds the class's prompt: run it here on three rows and compare with the API's separator
    session = onnxruntime.InferenceSession(str(tmp_path / "rain.onnx"), providers=["CPUExecutionProvider"])
    rows = np.random.default_rng(5).uniform(-0.3, 0.3, (3, 32000)).astype(np.float32)
    got = session.run(None, {"mixture": rows})[0]
    separator = load_separator(str(tmp_path / "p.npz"))
    for row, out in zip(rows, got):
        np.testing.assert_allclose(out, separator.separate(row, 32000, "rain", chunk_seconds=1.0), atol=1e-4)
    with pytest.raises(AptUssError, match="name it <something>.onnx"):
        export_onnx(str(tmp_path / "p.npz"), "rain", str(tmp_path / "rain.bin"))


def test_the_exportable_separator_equals_the_separator():
    import torch

    from apt_uss.models.exportable import PromptedSeparator
    from apt_uss.models.frozen_separator import frozen_separator

    model = TINY.load()
    separator = frozen_separator(model.separator)
    prompt = torch.randn(model.cfg.embed_dim, generator=torch.Generator().manual_seed(0))
    mixture = torch.rand(2, 32000 * 2 + 77, generator=torch.Generator().manual_seed(1)) - 0.5
    with torch.inference_mode():
        expected = separator(mixture, prompt[None].expand(2, -1))["wav"]
        got = PromptedSeparator(separator, prompt)(mixture)
    # float32 rounding of two different summation orders; a wrong window, hop or trim is off by far more
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


@pytest.mark.slow
def test_the_model_registers_and_loads_through_a_postgresql_mlflow_server_as_the_charts(s3_server, tmp_path,
                                                                                        monkeypatch):
    """The chart's MLflow server is `mlflow server` on PostgreSQL with artifacts proxied to S3; the local one
    (`make mlflow-server-up`) runs the same command (tests/test_chart.py checks they match). Registering and
    loading a model through it needs no S3 keys on the client."""
    from apt_uss.io import tracking
    from apt_uss.tools import local_mlflow

    if shutil.which("initdb") is None and not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        pytest.skip("the local MLflow server needs PostgreSQL's server programs (initdb, pg_ctl): "
                    "apt-get install postgresql-15")
    monkeypatch.setenv("MLFLOW_DB_PORT", str(_free_port()))
    for key, value in s3_server.items():
        monkeypatch.setenv(key, value)
    folder = tmp_path / "mlflow-server"
    try:
        uri = local_mlflow.up(folder, dict(s3_server), "s3://apt-registry-test/mlflow-artifacts", port=_free_port())
        prompts = _prompt_file(tmp_path / "p.npz")
        for key in [k for k in os.environ if k.startswith("AWS_")]:  # the client holds no S3 keys
            monkeypatch.delenv(key)
        monkeypatch.setenv("APT_USS_HOME", str(tmp_path / "client-state"))
        run_id = tracking.log_run(uri, "registry", "r", {"dataset": "synthetic"}, {"sdr_apt_pooled_median": 1.0})
        model = log_prompt_model(uri, run_id, prompts, "apt-uss-server-test")
        assert model["registered_uri"] == "models:/apt-uss-server-test/1"
        separator = load_separator("models:/apt-uss-server-test/1", tracking_uri=uri)
        assert separator.classes == ["dog", "rain"] and separator.backbone.name == "tiny"
    finally:
        local_mlflow.down(folder, purge=True)
