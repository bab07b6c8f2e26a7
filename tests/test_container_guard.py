"""The containerized runner's guards, against a stand-in Docker client (no engine needed)."""

import json
import logging
import os
import subprocess
import sys
import tempfile

import pytest

from apt_uss.errors import AptUssError
from apt_uss.tools import container_runner


class FakeContainer:
    """Started with auto-remove, it is gone by the time anyone asks for its exit code, as a
    quickly exiting container is on a real engine (the race behind kubeflow/pipelines#13332)."""

    def __init__(self, events, code, auto_remove, output=b"step output\n"):
        self.events, self.code, self.auto_remove, self.id = events, code, auto_remove, "c0ffee"
        self.output = output

    def logs(self, stream=False, follow=False):
        self.events.append("logs")
        yield self.output

    def wait(self):
        self.events.append("wait")
        if self.auto_remove:
            import docker

            raise docker.errors.NotFound("No such container: c0ffee")
        return {"StatusCode": self.code}

    def remove(self, force):
        self.events.append("remove")


class FakeImage:
    def __init__(self, tag, image_id=None):
        self.tags, self.attrs, self.id = [tag], {"RepoDigests": []}, image_id or f"sha256:{tag}"


class FakeClient:
    """Containers exit with ``code``; only ``images`` are present; pulling is an error."""

    def __init__(self, code=0, images=("apt-uss:0.1.0",), output=b"step output\n"):
        self.events, self.code, self.run_kwargs, self.output, self.runs = [], code, None, output, []
        self.images = self
        self._present = [i if isinstance(i, FakeImage) else FakeImage(i) for i in images]
        self.containers = self

    def list(self):
        return self._present

    def get(self, name):
        return next(i for i in self._present if name in i.tags)

    def pull(self, image):
        raise AssertionError(f"pulled {image}")

    def run(self, **kwargs):
        self.run_kwargs = kwargs
        self.runs.append(kwargs)
        self.events.append("run")
        return FakeContainer(self.events, self.code, kwargs.get("auto_remove", False), self.output)

    def ping(self):
        return True

    def info(self):
        return {"SecurityOptions": []}

    def close(self):
        pass


def test_the_exit_code_is_read_before_the_container_is_removed():
    client, seen = FakeClient(code=3), []
    code = container_runner.run_to_exit_code(client, "apt-uss:0.1.0", ["python3"], {}, base_env={"A": "1"},
                                             echo=seen.append, environment={"B": "2"}, auto_remove=True,
                                             network_mode="host")
    assert code == 3
    assert client.events == ["run", "logs", "wait", "remove"]
    assert client.run_kwargs["auto_remove"] is False and client.run_kwargs["network_mode"] == "host"
    assert client.run_kwargs["environment"] == {"A": "1", "B": "2"}  # the task's variables beside the run's
    assert seen == ["step output\n"]


def test_a_missing_image_is_one_error_naming_the_build_target_and_nothing_is_pulled():
    client = FakeClient(images=("other:1",))
    with pytest.raises(AptUssError, match=r"apt-uss-gpu:0.1.0 is not on this Docker engine.*make images"):
        container_runner.check_images(client, ["apt-uss-gpu:0.1.0"])
    with pytest.raises(AptUssError, match="make images"):
        container_runner.run_to_exit_code(client, "apt-uss:0.1.0", ["true"], {})
    assert client.events == []


def test_kfps_docker_task_handler_reports_a_raising_step_as_failed(monkeypatch, tmp_path):
    """The guard is wired into kfp.local: a container that exits 1 is a FAILURE, not a SUCCESS."""
    import docker
    from kfp.local import config, docker_task_handler, status

    client = FakeClient(code=1)
    monkeypatch.setattr(docker, "from_env", lambda *a, **k: client)
    unguarded = getattr(docker_task_handler.run_docker_container, "kfp_original",
                        docker_task_handler.run_docker_container)
    monkeypatch.setattr(docker_task_handler, "run_docker_container", unguarded)
    handler = docker_task_handler.DockerTaskHandler(
        image="apt-uss:0.1.0", full_command=["python3", "-c", "raise SystemExit(1)"],
        pipeline_root=str(tmp_path), runner=config.DockerRunner(network_mode="host"))
    assert handler.run() == status.Status.SUCCESS  # the bug, unguarded: the failed step "succeeded"
    client.events.clear()
    container_runner.install_exit_code_guard({"AWS_ACCESS_KEY_ID": "k"})
    handler = docker_task_handler.DockerTaskHandler(
        image="apt-uss:0.1.0", full_command=["python3", "-c", "raise SystemExit(1)"],
        pipeline_root=str(tmp_path), runner=config.DockerRunner(network_mode="host"))
    assert handler.run() == status.Status.FAILURE
    assert client.events == ["run", "logs", "wait", "remove"]
    assert client.run_kwargs["environment"]["AWS_ACCESS_KEY_ID"] == "k"
    client.code = 0
    assert handler.run() == status.Status.SUCCESS


def test_no_engine_is_one_error_saying_how_to_start_one(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-such.sock'}")
    with pytest.raises(AptUssError, match=r"no Docker engine answers.*make docker-up"):
        container_runner.engine()


def test_only_s3_and_mlflow_variables_reach_the_containers():
    environ = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "MLFLOW_TRACKING_TOKEN": "t",
               "HOME": "/root", "PATH": "/usr/bin", "GITHUB_TOKEN": "g", "AWS_REGION": ""}
    assert container_runner.forwarded_environment(environ) == {
        "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "MLFLOW_TRACKING_TOKEN": "t"}


# Which user the steps run as: decided by one probe container per distinct image.

def _probe_says(**by_user):
    """What the probe prints: for each "uid:gid", null (can write everything) or the first problem."""
    return (container_runner.PROBE_MARK + json.dumps(by_user) + "\n").encode()


UNREACHABLE = {"path": "", "folder": "/root", "why": "not searchable"}


@pytest.fixture
def as_root(monkeypatch):
    """The caller is root; chown calls are recorded, not made."""
    chowns = []
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(os, "getegid", lambda: 0)
    monkeypatch.setattr(os, "chown", lambda path, uid, gid: chowns.append((str(path), uid, gid)))
    return chowns


def _unreachable(path):
    return dict(UNREACHABLE, path=str(path))


def test_as_root_steps_run_as_uid_1000_where_it_can_write_the_outputs(as_root, tmp_path, caplog):
    root = tmp_path / "outputs"
    client = FakeClient(images=("apt-uss:0.1.0", FakeImage("apt-uss-gpu:0.1.0", "sha256:apt-uss:0.1.0")),
                        output=_probe_says(**{"1000:1000": None, "0:0": None}))
    env = {"APT_USS_HOME": str(root / ".state"), "HOME": "/tmp", "AWS_ACCESS_KEY_ID": "k"}
    with caplog.at_level(logging.INFO, logger="apt_uss.tools.container_runner"):
        user = container_runner.container_user(root, env, images=["apt-uss:0.1.0", "apt-uss-gpu:0.1.0"],
                                               client=client)
    assert user == "1000:1000"
    assert root.is_dir() and as_root == [(str(root), 1000, 1000)]  # handed to the steps' user, and kept
    assert not caplog.records
    # One probe for the two names of one image: as root, same mount as kfp.local's, no network, removed.
    assert len(client.runs) == 1 and client.events == ["run", "logs", "wait", "remove"]
    probe = client.runs[0]
    assert probe["user"] == "0:0" and probe["network_mode"] == "none" and probe["auto_remove"] is False
    assert probe["volumes"] == {str(root): {"bind": str(root), "mode": "rw"}}
    args = json.loads(probe["command"][-1])
    assert args["users"] == ["1000:1000", "0:0"]
    assert args["paths"] == [[str(root), False], [str(root / ".state"), True], ["/tmp", False]]


def test_as_root_steps_run_as_root_with_one_line_saying_why_where_uid_1000_cannot_reach(as_root, tmp_path, caplog):
    root = tmp_path / "outputs"
    client = FakeClient(output=_probe_says(**{"1000:1000": _unreachable(root), "0:0": None}))
    with caplog.at_level(logging.INFO, logger="apt_uss.tools.container_runner"):
        user = container_runner.container_user(root, images=["apt-uss:0.1.0"], client=client)
    assert user == "0:0"
    before = os.stat(root)
    assert as_root == [(str(root), 1000, 1000), (str(root), before.st_uid, before.st_gid)]  # handed back
    assert [r.getMessage() for r in caplog.records] == [
        f"steps run as uid 0 in their containers: uid 1000 cannot reach the outputs folder {root} inside "
        "apt-uss:0.1.0 (a folder above it, /root, is not searchable)"]


def test_a_state_folder_uid_1000_cannot_write_also_runs_the_steps_as_root(as_root, tmp_path, caplog):
    root = tmp_path / "outputs"
    state = str(root / ".state")
    problem = {"path": state, "folder": f"{state}/cache", "why": "not writable"}
    client = FakeClient(output=_probe_says(**{"1000:1000": problem, "0:0": None}))
    with caplog.at_level(logging.INFO, logger="apt_uss.tools.container_runner"):
        assert container_runner.container_user(root, {"APT_USS_HOME": state}, images=["apt-uss:0.1.0"],
                                               client=client) == "0:0"
    assert caplog.records[0].getMessage().endswith(
        f"uid 1000 cannot write APT_USS_HOME={state} inside apt-uss:0.1.0 ({state}/cache is not writable)")


def test_where_not_even_the_caller_can_write_the_outputs_one_error_names_the_path(as_root, tmp_path):
    root = tmp_path / "outputs"
    client = FakeClient(output=_probe_says(**{"1000:1000": _unreachable(root),
                                               "0:0": dict(_unreachable(root), folder=str(root), why="not writable")}))
    with pytest.raises(AptUssError, match=rf"cannot write their outputs.*uid 0 cannot write the outputs folder "
                                          rf"{root} inside apt-uss:0.1.0 \({root} is not writable\).*APT_USS_HOME"):
        container_runner.container_user(root, images=["apt-uss:0.1.0"], client=client)


def test_another_caller_runs_the_steps_as_itself_or_gets_one_error(monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(os, "geteuid", lambda: 1234)
    monkeypatch.setattr(os, "getegid", lambda: 99)
    monkeypatch.setattr(os, "chown", lambda *a: pytest.fail("chowned as a non-root caller"))
    root = tmp_path / "outputs"
    client = FakeClient(output=_probe_says(**{"1234:99": None}))
    with caplog.at_level(logging.INFO, logger="apt_uss.tools.container_runner"):
        assert container_runner.container_user(root, images=["apt-uss:0.1.0"], client=client) == "1234:99"
    assert json.loads(client.run_kwargs["command"][-1])["users"] == ["1234:99"] and not caplog.records
    client = FakeClient(output=_probe_says(**{"1234:99": _unreachable(root)}))
    with pytest.raises(AptUssError, match=rf"uid 1234 cannot reach the outputs folder {root} inside apt-uss:0.1.0"):
        container_runner.container_user(root, images=["apt-uss:0.1.0"], client=client)


def test_a_failed_probe_or_a_missing_image_is_one_error(as_root, tmp_path):
    client = FakeClient(code=1, output=b"python3: not found\n")
    with pytest.raises(AptUssError, match=r"access check of the outputs folder .* failed \(exit code 1\): "
                                          r"python3: not found"):
        container_runner.container_user(tmp_path / "o", images=["apt-uss:0.1.0"], client=client)
    assert as_root[-1][1:] == (os.stat(tmp_path / "o").st_uid, os.stat(tmp_path / "o").st_gid)  # handed back
    with pytest.raises(AptUssError, match="make images"):
        container_runner.container_user(tmp_path / "o", images=["apt-uss-gpu:0.1.0"], client=FakeClient())


def test_the_step_images_are_the_pipelines():
    assert container_runner.step_images({}) == ["apt-uss:0.1.0", "apt-uss-gpu:0.1.0"]
    assert container_runner.step_images({"APT_USS_IMAGE": "r/a:1", "APT_USS_GPU_IMAGE": "r/a:1"}) == ["r/a:1"]


# The probe itself, run here in place of a container (as root it takes uid 1000's identity as in one).

def _probe(users, paths):
    done = subprocess.run([sys.executable, "-c", container_runner.PROBE,
                           json.dumps({"users": users, "paths": [[str(p), t] for p, t in paths]})],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip().splitlines()[-1]
    assert line.startswith(container_runner.PROBE_MARK)
    return json.loads(line[len(container_runner.PROBE_MARK):])


def test_the_probe_finds_the_folder_that_stops_a_user():
    me = f"{os.geteuid()}:{os.getegid()}"
    other = "1000:1000" if os.geteuid() == 0 else me  # root's own checks pass wherever modes are
    base = tempfile.mkdtemp(prefix="apt-uss-probe-test-", dir="/tmp")
    try:
        os.chmod(base, 0o755)
        locked = os.path.join(base, "locked")
        os.mkdir(locked, 0o700)
        if other == me:
            os.chmod(locked, 0o600)  # even its owner cannot search it
        state = os.path.join(base, "state")
        os.mkdir(state)
        os.chmod(state, 0o777)
        os.mkdir(os.path.join(state, "cache"))
        os.chmod(os.path.join(state, "cache"), 0o555 if other == me else 0o755)  # not writable by `other`
        found = _probe([other, me], [(f"{locked}/outputs", False), (state, False)])
        assert found[other] == {"path": f"{locked}/outputs", "folder": locked, "why": "not searchable"}
        if other != me:
            assert found[me] is None
        assert _probe([other], [(state, False), (f"{state}/new/deeper", False), ("/tmp", False)]) == {other: None}
        assert _probe([other], [(state, True)]) == {
            other: {"path": state, "folder": f"{state}/cache", "why": "not writable"}}
        assert not [n for n in os.listdir(state) if n.startswith(".apt-uss-probe-")]  # its trial folders are gone
    finally:
        os.chmod(os.path.join(base, "locked"), 0o700)
        import shutil

        shutil.rmtree(base)
