import os
import socket

import pytest

from apt_uss.data.dataset import fetch_dataset
from apt_uss.tools import local_s3
from tests.local_runs import TINY_PIPELINE, run_environment, run_local

# One SeaweedFS server per test process: under pytest-xdist (make test runs two workers) each
# worker's server moves all its listeners by 100 ports (local_s3 shifts them together).
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
TEST_S3_PORT = int(os.environ.get("APT_USS_TEST_S3_PORT", "8633")) + 100 * int(_WORKER.removeprefix("gw") or 0)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """A 3-class synthetic dataset in ESC-50's layout, made once per session."""
    out = tmp_path_factory.mktemp("data") / "synthetic"
    fetch_dataset("synthetic", out, n_classes=3, seed=0)
    return out


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real SeaweedFS S3 server on 127.0.0.1 with random keys; yields its environment."""
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", TEST_S3_PORT)) == 0:
            pytest.fail(f"port {TEST_S3_PORT} is taken: set APT_USS_TEST_S3_PORT to a free port")
    folder = tmp_path_factory.mktemp("s3")
    env = local_s3.up(folder, port=TEST_S3_PORT)
    yield env
    local_s3.down(folder)


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """Point boto3 at the test server for the duration of one test."""
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    for key, value in s3_server.items():
        monkeypatch.setenv(key, value)
    return s3_server


@pytest.fixture(scope="session")
def tiny_pipeline_run(s3_server, tmp_path_factory):
    """``python -m pipelines.run_local`` on ``TINY_PIPELINE`` (subprocess runner, artifacts to the test S3 server),
    run once per test process: (the finished process, its APT_USS_HOME). The whole-pipeline test checks what it
    wrote and the container test compares the containers' table with its; both are in the ``containers`` xdist
    group, so one worker runs it once."""
    state = tmp_path_factory.mktemp("tiny-pipeline") / "state"
    result = run_local(TINY_PIPELINE + ["--artifact-uri", "s3://apt-pipeline-test/runs"],
                       run_environment(s3_server, state), timeout=900)
    return result, state
