"""``make pipeline-submit`` (python -m pipelines.submit) and ``python -m apt_uss pipeline-upload`` against a
local stand-in for the KFP REST API v2beta1 that checks every request against the published schema."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines.apt_uss_pipeline import PIPELINE_NAME, apt_uss_pipeline
from pipelines.compile import compile_pipeline
from pipelines.local_cli import pipeline_defaults
from pipelines.sweep_pipeline import SWEEP_PIPELINE_NAME, apt_uss_sweep
from tests.kfp_standin import KfpStandIn

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "s3cr3t-token-for-the-stand-in"


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return compile_pipeline(tmp_path_factory.mktemp("dist") / "apt_uss_pipeline.yaml")


@pytest.fixture
def env(tmp_path):
    """A user's environment without kfp context (~/.config/kfp) or KFP variables of this machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KFP_", "KF_PIPELINES"))}
    env.update(HOME=str(tmp_path / "home"), PYTHONPATH=str(ROOT))
    return env


def _run(args, env, module="pipelines.submit", timeout=120):
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _submit(api_url, package, env, *extra):
    return _run(["--host", api_url, "--package", str(package), *extra], env)


def _error_lines(proc):
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


def test_submit_uploads_then_adds_a_version_and_runs_with_every_parameter(package, env):
    with KfpStandIn() as api:
        first = _submit(api.url, package, env, "--experiment", "apt-uss-kfp", "--n-shot", "10", "--epochs", "7",
                        "--lr", "0.001", "--run-name", "apt-uss-test-1")
        assert first.returncode == 0, first.stderr
        second = _submit(api.url, package, env, "--experiment", "apt-uss-kfp", "--kfp-experiment", "other",
                         "--n-shot", "full")
        assert second.returncode == 0, second.stderr
    assert api.violations == []
    ops = api.operations()
    assert ops.count("UploadPipeline") == 1 and ops.count("UploadPipelineVersion") == 1
    assert ops.count("RunService_CreateRun") == 2

    # the uploaded file is the compiled package; the second submit is a new version of the same pipeline
    upload = next(c for c in api.calls if c["operation"] == "UploadPipeline")
    assert upload["query"]["name"] == PIPELINE_NAME
    uploaded = upload["files"]["uploadfile"]["content"]
    assert uploaded == package.read_bytes()
    assert next(yaml.safe_load_all(uploaded))["pipelineInfo"]["name"] == "apt-uss"
    (pipeline,) = api.pipelines.values()
    versions = sorted(api.versions.values(), key=lambda v: v["_seq"])
    assert [v["pipeline_id"] for v in versions] == [pipeline["pipeline_id"]] * 2
    assert versions[1]["name"].startswith(f"{PIPELINE_NAME}-") and versions[1]["name"] != versions[0]["name"]

    runs = [c["json"] for c in api.calls if c["operation"] == "RunService_CreateRun"]
    experiments = {e["experiment_id"]: e["display_name"] for e in api.experiments.values()}
    assert [experiments[r["experiment_id"]] for r in runs] == ["apt-uss-kfp", "other"]
    for run, version in zip(runs, versions):
        assert run["pipeline_version_reference"] == {"pipeline_id": pipeline["pipeline_id"],
                                                     "pipeline_version_id": version["pipeline_version_id"]}
    assert runs[0]["display_name"] == "apt-uss-test-1"
    assert runs[1]["display_name"].startswith(f"{PIPELINE_NAME}-")
    defaults = pipeline_defaults(apt_uss_pipeline)
    given = runs[0]["runtime_config"]["parameters"]
    assert set(given) == set(defaults)  # every parameter, so the run records it and a clone can change it
    assert (given["n_shot"], given["epochs"], given["lr"], given["experiment"]) == ("10", 7, 0.001, "apt-uss-kfp")
    assert {k: v for k, v in given.items() if k not in ("n_shot", "epochs", "lr", "experiment")} == \
        {k: v for k, v in defaults.items() if k not in ("n_shot", "epochs", "lr", "experiment")}
    assert runs[1]["runtime_config"]["parameters"]["n_shot"] == "full"

    run_id = next(iter(api.runs))
    assert f"run URL:    {api.url}/#/runs/details/{run_id}" in first.stdout
    assert pipeline["pipeline_id"] in first.stdout and versions[0]["pipeline_version_id"] in first.stdout


def _make_sweep_submit_args(*variables: str) -> list[str]:
    """The arguments ``make sweep-submit`` passes to ``python -m pipelines.submit`` (from ``make -n``)."""
    out = subprocess.run(["make", "-n", "--no-print-directory", "sweep-submit", "KFP_HOST=http://kfp.invalid",
                          *variables], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    submit = out.stdout.replace("\\\n", " ").split("-m pipelines.submit", 1)[1]  # its last command
    return shlex.split(submit)


def test_make_sweep_submit_sends_the_sweep_as_its_own_pipeline_with_every_sweep_parameter(env, tmp_path):
    """``make sweep-submit``'s command: the compiled sweep goes up under its own name and runs with its parameters
    (the seeds, the n_shot values, the rest of the run's but none a cell sets); a cell's parameter is refused."""
    package = compile_pipeline(tmp_path / "apt_uss_sweep.yaml", pipeline="sweep")
    args = _make_sweep_submit_args("SEEDS=4,5", "SWEEP_SHOTS=1,full", "EPOCHS=3")
    assert args[:2] == ["--pipeline", "sweep"] and args[args.index("--host") + 1] == "http://kfp.invalid"
    args[args.index("--host") + 1] = "{host}"
    args[args.index("--package") + 1] = str(package)
    with KfpStandIn() as api:
        done = _run([a.replace("{host}", api.url) for a in args], env)
        assert done.returncode == 0, done.stderr
        cell = _submit(api.url, package, env, "--pipeline", "sweep", "--n-shot", "5")
    assert api.violations == []
    upload = next(c for c in api.calls if c["operation"] == "UploadPipeline")
    assert upload["query"]["name"] == SWEEP_PIPELINE_NAME
    assert next(yaml.safe_load_all(upload["files"]["uploadfile"]["content"]))["pipelineInfo"]["name"] == \
        SWEEP_PIPELINE_NAME
    (run,) = [c["json"] for c in api.calls if c["operation"] == "RunService_CreateRun"]
    given = run["runtime_config"]["parameters"]
    assert set(given) == set(pipeline_defaults(apt_uss_sweep))
    assert (given["seeds"], given["sweep_shots"], given["epochs"]) == ("4,5", "1,full", 3)
    assert not set(given) & {"n_shot", "shot_seed", "mix_seed"}
    assert cell.returncode == 2 and "--n-shot" in cell.stderr  # argparse: no such option for the sweep


@pytest.mark.slow
def test_token_is_sent_and_a_rejected_token_is_one_clear_line(package, env):
    with KfpStandIn(token=TOKEN) as api:
        ok = _submit(api.url, package, dict(env, KFP_TOKEN=TOKEN))
        wrong = _submit(api.url, package, dict(env, KFP_TOKEN="wrong-token-value"))
        missing = _submit(api.url, package, env)
    assert ok.returncode == 0, ok.stderr
    assert api.violations == []
    assert wrong.returncode == 2 and missing.returncode == 2
    (line,) = _error_lines(wrong)
    assert "rejected the token" in line and "KFP_TOKEN" in line and "HTTP 401" in line
    assert "without a token" in _error_lines(missing)[0]
    assert "Traceback" not in wrong.stderr + missing.stderr
    for proc in (ok, wrong, missing):
        assert TOKEN not in proc.stdout + proc.stderr
        assert "wrong-token-value" not in proc.stdout + proc.stderr
    # the rejected submissions stopped at the health check: nothing was uploaded for them
    assert sum(c["operation"] == "UploadPipeline" for c in api.calls) == 1


@pytest.mark.slow
def test_token_file_and_upload_only_cli(package, env, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    with KfpStandIn(token=TOKEN) as api:
        first = _run(["pipeline-upload", "--host", api.url, "--package", str(package), "--pipeline-name",
                      "apt-uss-helm", "--token-file", str(token_file)], env, module="apt_uss")
        again = _run(["pipeline-upload", "--host", api.url, "--package", str(package), "--pipeline-name",
                      "apt-uss-helm", "--token-file", str(token_file)], env, module="apt_uss")
        absent = _run(["pipeline-upload", "--host", api.url, "--package", str(package), "--pipeline-name",
                       "x", "--token-file", str(tmp_path / "nope")], env, module="apt_uss")
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    assert api.violations == []
    assert [c["operation"] for c in api.calls if "Upload" in (c["operation"] or "")] == \
        ["UploadPipeline", "UploadPipelineVersion"]
    assert not any(c["operation"] == "RunService_CreateRun" for c in api.calls)  # upload only
    assert '"pipeline_id"' in first.stdout and TOKEN not in first.stdout + first.stderr
    assert absent.returncode == 2 and "cannot read the token file" in _error_lines(absent)[0]


@pytest.mark.slow
def test_multi_user_needs_a_namespace_and_puts_everything_in_it(package, env):
    with KfpStandIn(multi_user=True) as api:
        without = _submit(api.url, package, env)
        within = _submit(api.url, package, env, "--namespace", "team-a")
    assert without.returncode == 2 and "multi-user" in _error_lines(without)[0]
    assert within.returncode == 0, within.stderr
    assert api.violations == []
    assert [p["namespace"] for p in api.pipelines.values()] == ["team-a"]
    assert [e["namespace"] for e in api.experiments.values()] == ["team-a"]


def test_unreachable_host_fails_fast_with_one_line(package, env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    # Fails fast: a hang past the subprocess timeout fails the test.
    proc = _run(["--host", f"http://user:pw@127.0.0.1:{port}", "--package", str(package)], env, timeout=90)
    assert proc.returncode == 2
    (line,) = _error_lines(proc)
    assert f"http://127.0.0.1:{port}" in line and "does not answer" in line and "connection refused" in line
    assert "pw" not in proc.stderr and "Traceback" not in proc.stderr


def test_missing_package_names_make_pipeline_compile(env, tmp_path):
    proc = _submit("http://127.0.0.1:9", tmp_path / "absent.yaml", env)
    assert proc.returncode == 2
    assert "make pipeline-compile" in _error_lines(proc)[0]


def test_standin_rejects_what_the_schema_does_not_allow():
    """The checks themselves: an unknown path, an undeclared query parameter and an unknown body field."""
    import json
    import urllib.error
    import urllib.request

    with KfpStandIn() as api:
        def call(method, path, body=None):
            req = urllib.request.Request(api.url + path, method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return r.status
            except urllib.error.HTTPError as exc:
                return exc.code

        assert call("GET", "/apis/v2beta1/nowhere") == 404
        assert call("GET", "/apis/v2beta1/pipelines?colour=blue") == 400
        assert call("POST", "/apis/v2beta1/experiments", {"display_name": "e", "colour": "blue"}) == 400
        assert call("POST", "/apis/v2beta1/experiments", {"displayName": "e"}) == 200  # protojson's camelCase
        assert call("GET", '/apis/v2beta1/pipelines?filter={"predicates":[{"operation":"SOMETIMES"}]}') == 400
    assert len(api.violations) == 4


def test_bad_parameters_are_refused_before_anything_reaches_the_cluster(package, env):
    with KfpStandIn() as api:
        proc = _submit(api.url, package, env, "--n-shot", "99")
        assert proc.returncode == 2
        (line,) = _error_lines(proc)
        assert "n_shot=99" in line and "use 1 to 24 or 'full'" in line
        proc = _submit(api.url, package, env, "--dataset", "nonsense")
        assert proc.returncode == 2 and "dataset" in _error_lines(proc)[0]
        assert api.calls == []
