"""The containerized runner's guards, against a stand-in Docker client (no engine needed)."""

import pytest

from apt_uss import container_runner
from apt_uss.errors import AptUssError


class FakeContainer:
    """Started with auto-remove, it is gone by the time anyone asks for its exit code, as a
    quickly exiting container is on a real engine (the race behind kubeflow/pipelines#13332)."""

    def __init__(self, events, code, auto_remove):
        self.events, self.code, self.auto_remove, self.id = events, code, auto_remove, "c0ffee"

    def logs(self, stream=False, follow=False):
        self.events.append("logs")
        yield b"step output\n"

    def wait(self):
        self.events.append("wait")
        if self.auto_remove:
            import docker

            raise docker.errors.NotFound("No such container: c0ffee")
        return {"StatusCode": self.code}

    def remove(self, force):
        self.events.append("remove")


class FakeImage:
    def __init__(self, tag):
        self.tags, self.attrs = [tag], {"RepoDigests": []}


class FakeClient:
    """Containers exit with ``code``; only ``images`` are present; pulling is an error."""

    def __init__(self, code=0, images=("apt-uss:0.1.0",)):
        self.events, self.code, self.run_kwargs = [], code, None
        self.images = self
        self._present = [FakeImage(i) for i in images]
        self.containers = self

    def list(self):
        return self._present

    def pull(self, image):
        raise AssertionError(f"pulled {image}")

    def run(self, **kwargs):
        self.run_kwargs = kwargs
        self.events.append("run")
        return FakeContainer(self.events, self.code, kwargs.get("auto_remove", False))

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
