"""Running the pipeline's steps in their containers on this machine (``RUNNER=docker``).

KFP's ``DockerRunner`` (kfp 2.17.3) starts each step's container with auto-remove and, when
the container is gone before it asks for the exit code, takes Docker's "not found" for exit
code 0: a step that raised can be reported as succeeded (kubeflow/pipelines#13332). And it
pulls any image it does not find. ``install_exit_code_guard`` replaces its container
launcher with one that never pulls, keeps the container until its exit code is read, and
only then removes it.
"""

from __future__ import annotations

import logging
import os
from typing import Callable

from .errors import AptUssError

log = logging.getLogger(__name__)

ENGINE_HINT = "start one with `make docker-up` (images/engine.sh start) or set DOCKER_HOST"
IMAGES_HINT = "build it with `make images` (offline: `make base-image` first, see README, Containers)"
CONTAINER_UID = 1000  # the images' non-root user
# What a step in a container may need from the caller's environment: S3 and MLflow access.
# Values are passed to the container, never logged.
FORWARDED_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                 "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION", "AWS_REGION", "MLFLOW_TRACKING_TOKEN",
                 "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_S3_ENDPOINT_URL",
                 "MLFLOW_TRACKING_INSECURE_TLS", "MLFLOW_RUN_ID")


def engine():
    """A client of the Docker engine, or one clear error saying how to start one."""
    try:
        import docker
    except ImportError:
        raise AptUssError("the Python package 'docker' is missing: run make setup") from None
    try:
        client = docker.from_env(timeout=10)
        client.ping()
    except Exception as exc:  # socket missing, permission denied, daemon down: all mean "no engine"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AptUssError(f"no Docker engine answers ({first}): {ENGINE_HINT}") from None
    return client


def _tagged(image: str) -> str:
    return image if ":" in image.rsplit("/", 1)[-1] else f"{image}:latest"


def missing_images(client, images) -> list[str]:
    present = set()
    for found in client.images.list():
        present.update(found.tags)
        present.update(found.attrs.get("RepoDigests") or [])
    return [i for i in dict.fromkeys(images) if _tagged(i) not in present]


def check_images(client, images) -> None:
    """Fail with one line if an image the pipeline names is not on this engine (nothing is pulled)."""
    missing = missing_images(client, images)
    if missing:
        raise AptUssError(f"image {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not on this "
                          f"Docker engine and nothing is pulled: {IMAGES_HINT}")


def forwarded_environment(environ=os.environ) -> dict[str, str]:
    return {k: environ[k] for k in FORWARDED_ENV if environ.get(k)}


def s3_environment(environ=os.environ) -> dict[str, str]:
    """The S3 endpoint and keys of the caller's environment (what the local MLflow server stores with)."""
    return {k: v for k, v in forwarded_environment(environ).items() if k.startswith("AWS_")}


def run_to_exit_code(client, image: str, command, volumes, base_env: dict[str, str] | None = None,
                     echo: Callable[[str], None] = lambda s: print(s, end=""), **run_args) -> int:
    """Run a container to its end and return its real exit code; the container is removed after."""
    image = _tagged(image)
    check_images(client, [image])
    run_args.pop("auto_remove", None)
    env = {**(base_env or {}), **(run_args.pop("environment", None) or {})}
    container = client.containers.run(image=image, command=command, detach=True, stdout=True, stderr=True,
                                      volumes=volumes, environment=env, auto_remove=False, **run_args)
    try:
        for line in container.logs(stream=True, follow=True):
            echo(line.decode(errors="replace"))
        return int(container.wait()["StatusCode"])
    finally:
        try:
            container.remove(force=True)
        except Exception as exc:  # already gone (someone else removed it): the exit code is what counts
            log.debug("removing container %s: %s", getattr(container, "id", "?"), exc)


def install_exit_code_guard(base_env: dict[str, str]) -> None:
    """Make kfp.local's DockerRunner use ``run_to_exit_code`` (with ``base_env`` in every container)."""
    from kfp.local import docker_task_handler

    def launch(client, image, command, volumes, **run_args):
        return run_to_exit_code(client, image, command, volumes, base_env=base_env, **run_args)

    current = docker_task_handler.run_docker_container
    launch.kfp_original = getattr(current, "kfp_original", current)  # what a caller may restore
    docker_task_handler.run_docker_container = launch


def container_user(pipeline_root) -> str:
    """Steps run as the image's non-root user where the outputs folder can be handed to it
    (as root here); otherwise as the caller, so the caller can read and delete what they write.
    Each step writes only below ``pipeline_root`` (KFP creates a task's folders in its container)."""
    os.makedirs(pipeline_root, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(pipeline_root, CONTAINER_UID, CONTAINER_UID)
        return f"{CONTAINER_UID}:{CONTAINER_UID}"
    return f"{os.getuid()}:{os.getgid()}"
