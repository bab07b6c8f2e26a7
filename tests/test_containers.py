"""The pipeline with every step in its container (``RUNNER=docker``), on a real Docker engine.

Skipped when no engine answers (start one with ``make docker-up``); CI starts one. The images
are built with ``make images`` (cached between runs), from the official base when it is on
this engine and otherwise from the local stand-in ``make base-image`` builds.
"""

import fcntl
import json
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import mlflow
import pytest

from apt_uss.errors import AptUssError
from apt_uss.io import storage
from apt_uss.tools import container_runner, local_mlflow
from tests.local_runs import TINY_PIPELINE, executor_inputs_folded, run_environment, run_local

# One xdist worker runs them all: they share the images the module fixture builds.
pytestmark = pytest.mark.xdist_group("containers")

ROOT = Path(__file__).resolve().parents[1]
TINY = TINY_PIPELINE
OFFICIAL_BASE = "python:3.11-slim-bookworm"
LOCAL_BASE = "apt-uss-base:bookworm-py3.11"
LOCAL_CA_DIR = "/usr/local/share/ca-certificates"


def _engine_or_skip():
    try:
        return container_runner.engine()
    except AptUssError as exc:
        pytest.skip(str(exc))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Image builds of the test workers (pytest-xdist gives each worker this module's fixture) take turns: two cold
# builds at once would each make their own, differently stamped layers, and the tag would move under a test.
BUILD_LOCK = Path(tempfile.gettempdir()) / "apt-uss-test-image-build.lock"


def _make(*args, timeout=1500):
    with open(BUILD_LOCK, "a") as lock:
        if args and args[0] in ("images", "base-image"):
            fcntl.flock(lock, fcntl.LOCK_EX)
        done = subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout)
    assert done.returncode == 0, f"make {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _image_args(base):
    """Where this machine trusts extra CA certificates (a TLS-intercepting proxy), the image build must too."""
    args = [f"BASE_IMAGE={base}", f"GPU_BASE_IMAGE={base}"]
    if list(Path(LOCAL_CA_DIR).glob("*.crt")):
        args.append(f"EXTRA_CA_CERTS_DIR={LOCAL_CA_DIR}")
    return args


def _image_id(client, name):
    return client.images.get(name).id


@pytest.fixture(scope="module")
def images():
    """Build (or find cached) the two images the compiled pipeline names; yield the engine client."""
    client = _engine_or_skip()
    if container_runner.missing_images(client, [OFFICIAL_BASE]):
        if container_runner.missing_images(client, [LOCAL_BASE]) and os.geteuid() != 0:
            pytest.skip(f"neither {OFFICIAL_BASE} nor {LOCAL_BASE} is on the engine, and `make base-image` "
                        "(debootstrap) needs root: run it once as root")
        _make("base-image")
        base = LOCAL_BASE
    else:
        base = OFFICIAL_BASE
    _make("images", *_image_args(base))
    yield client, base


@pytest.mark.slow
def test_a_second_image_build_reuses_the_cache(images):
    client, base = images
    before = {name: _image_id(client, name) for name in ("apt-uss:0.1.0", "apt-uss-gpu:0.1.0")}
    _make("images", *_image_args(base))
    assert {name: _image_id(client, name) for name in before} == before
    # The image runs as a non-root user and carries the compiler's kfp.
    import kfp

    out = client.containers.run("apt-uss:0.1.0", ["sh", "-c", "id -u; python3 -c 'import kfp; print(kfp.__version__)'"],
                                remove=True, network_mode="none").decode().split()
    assert out[0] != "0" and out[1] == kfp.__version__


@pytest.mark.slow
def test_a_step_that_raises_fails_the_containerized_run(images, tmp_path, monkeypatch):
    from kfp import dsl, local
    from kfp.local import config, docker_task_handler

    # The guard and kfp.local's runner are process-wide: put both back after this test.
    monkeypatch.setattr(docker_task_handler, "run_docker_container", docker_task_handler.run_docker_container)
    monkeypatch.setattr(config.LocalExecutionConfig, "instance", config.LocalExecutionConfig.instance)

    @dsl.component(base_image="apt-uss:0.1.0", install_kfp_package=False)
    def broken_step(message: str):
        raise RuntimeError(message)

    @dsl.pipeline(name="broken")
    def broken_pipeline():
        broken_step(message="deliberate failure")

    root = tmp_path / "outputs"
    container_runner.install_exit_code_guard({})
    user = container_runner.container_user(root)
    # tmp_path's folders are not in the image (Docker creates them, 0755): as root, the steps stay unprivileged.
    assert user == ("1000:1000" if os.geteuid() == 0 else f"{os.geteuid()}:{os.getegid()}")
    local.init(runner=local.DockerRunner(network_mode="none", user=user), pipeline_root=str(root))
    for _ in range(3):  # the unguarded runner loses the exit code in a fraction of runs
        with pytest.raises(RuntimeError, match="broken-step"):
            broken_pipeline()


@pytest.fixture
def locked_folder(tmp_path):
    """A 0700 folder (as root: under /root, which is 0700 in the image too, so the image's uid
    1000 cannot reach anything below it inside a container; otherwise under tmp_path)."""
    if os.geteuid() == 0:
        folder = Path(tempfile.mkdtemp(prefix="apt-uss-test-", dir="/root"))
    else:
        folder = tmp_path / "locked"
        folder.mkdir()
    folder.chmod(0o700)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_a_step_writes_its_outputs_under_a_folder_the_image_user_cannot_reach(images, locked_folder, monkeypatch):
    """A clone under /root (0700, also in the image) as root, or anywhere as another user: the
    steps still write their outputs, and the caller can read and delete them."""
    from kfp import dsl, local
    from kfp.local import config, docker_task_handler

    monkeypatch.setattr(docker_task_handler, "run_docker_container", docker_task_handler.run_docker_container)
    monkeypatch.setattr(config.LocalExecutionConfig, "instance", config.LocalExecutionConfig.instance)

    @dsl.component(base_image="apt-uss:0.1.0", install_kfp_package=False)
    def write_step(text: str, out: dsl.Output[dsl.Dataset]) -> str:
        import os

        os.makedirs(os.path.join(os.environ["APT_USS_HOME"], "cache"), exist_ok=True)  # as the steps' caches do
        with open(out.path, "w") as f:
            f.write(text)
        return str(os.getuid())

    @dsl.pipeline(name="writes")
    def writes_pipeline() -> dsl.Dataset:
        return write_step(text="written in a container").outputs["out"]

    root = locked_folder / "outputs"
    container_runner.install_exit_code_guard({"APT_USS_HOME": str(root / ".state"), "HOME": "/tmp"})
    local.init(runner=local.DockerRunner(network_mode="none", user=container_runner.container_user(root)),
               pipeline_root=str(root))
    task = writes_pipeline()
    out = Path(task.output.path)
    assert out.is_relative_to(root) and out.read_text() == "written in a container"
    assert out.stat().st_uid == os.geteuid()  # unreachable for uid 1000: the steps ran as the caller
    assert (root / ".state" / "cache").is_dir()
    shutil.rmtree(root)  # the caller can delete what the steps wrote


@pytest.fixture
def docker_run_env(s3_env, tmp_path):
    """The caller's environment for a containerized run: the test S3 server, free MLflow and
    PostgreSQL ports, and a state folder of its own; the servers it starts are stopped after."""
    if shutil.which("initdb") is None and not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        pytest.skip("the local MLflow server needs PostgreSQL's server programs (initdb, pg_ctl): "
                    "apt-get install postgresql-15")
    yield run_environment(s3_env, tmp_path / "state", MLFLOW_PORT=str(_free_port()), MLFLOW_DB_PORT=str(_free_port()))
    local_mlflow.down(tmp_path / "state" / "mlflow-server", purge=True)  # its database may live outside tmp_path


def _run_local(args, env):
    return run_local(args, env, timeout=1200)


def _table(stdout: str) -> str:
    """The printed per-class and overall SDR table (without the paths and run ids after it)."""
    return stdout[stdout.index("Per-class median SDR"):stdout.index("MLflow run:")]


@pytest.mark.slow
def test_the_tiny_pipeline_runs_in_containers_like_in_process(images, docker_run_env, s3_env, request, monkeypatch):
    bucket_args = ["--artifact-uri", "s3://apt-docker-test/runs"]
    in_containers = _run_local(TINY + bucket_args + ["--runner", "docker"], docker_run_env)
    assert in_containers.returncode == 0, in_containers.stdout[-3000:] + in_containers.stderr[-3000:]
    out = in_containers.stdout
    for secret in (s3_env["AWS_SECRET_ACCESS_KEY"], s3_env["AWS_ACCESS_KEY_ID"]):
        assert secret not in out and secret not in in_containers.stderr
    # the containers' logs fold each task's executor input into one line, as the subprocess runner's do
    assert executor_inputs_folded(out)
    report = Path(out.split("Report:", 1)[1].split()[0])
    assert "kfp-docker-outputs" in str(report)
    run = json.loads((report / "run.json").read_text())
    summary = json.loads((report / "summary.json").read_text())

    # The MLflow server (PostgreSQL) holds the run, with the stable metric names and the artifacts.
    tracking_uri = f"http://127.0.0.1:{docker_run_env['MLFLOW_PORT']}"
    assert run["mlflow_tracking_uri"] == tracking_uri
    client = mlflow.MlflowClient(tracking_uri)
    mlrun = client.get_run(run["mlflow_run_id"])
    assert mlrun.info.status == "FINISHED" and mlrun.data.params["n_shot"] == "5"
    for name in ("sdr_baseline_pooled_median", "sdr_apt_pooled_median", "sdr_gain_pooled_median",
                 "sdr_baseline_class_mean", "sdr_apt_class_mean", "classes_improved"):
        assert mlrun.data.metrics[name] == pytest.approx(summary[name])
    assert sorted(m.step for m in client.get_metric_history(mlrun.info.run_id, "tune_loss")) == [0, 1]
    assert {"prompts_tuned.npz", "per_class.csv"} <= {a.path for a in client.list_artifacts(mlrun.info.run_id)}

    # The prompts and tables are in SeaweedFS, under the run's prefix and in the MLflow server's store.
    for key, value in s3_env.items():
        monkeypatch.setenv(key, value)
    s3 = storage.s3_client()
    for name in ("prompts_tuned.npz", "prompts_initial.npz", "per_class.csv", "per_mixture.csv", "summary.json"):
        bucket, key = storage.parse_s3_uri(run["s3"][name])
        assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
    stored = s3.list_objects_v2(Bucket="apt-docker-test", Prefix="mlflow-artifacts/")
    assert any(o["Key"].endswith("prompts_tuned.npz") for o in stored.get("Contents", []))

    # The same configuration in this interpreter's environment (the subprocess runner) prints the same table.
    in_process, _ = request.getfixturevalue("tiny_pipeline_run")  # asked for here: a skip above never pays for it
    assert in_process.returncode == 0, in_process.stderr[-3000:]
    assert _table(in_process.stdout) == _table(out)
