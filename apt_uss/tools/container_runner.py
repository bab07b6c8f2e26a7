"""Running the pipeline's steps in their containers on this machine (``RUNNER=docker``).

KFP's ``DockerRunner`` (kfp 2.17.3) starts each step's container with auto-remove and, when
the container is gone before it asks for the exit code, takes Docker's "not found" for exit
code 0: a step that raised can be reported as succeeded (kubeflow/pipelines#13332). And it
pulls any image it does not find. ``install_exit_code_guard`` replaces its container
launcher with one that never pulls, keeps the container until its exit code is read, and
only then removes it.

``container_user`` picks the user the steps run as: the images' unprivileged user where it can
write the outputs inside the containers, otherwise the caller (see its docstring).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Callable

from apt_uss.errors import AptUssError

log = logging.getLogger(__name__)

ENGINE_HINT = "start one with `make docker-up` (images/engine.sh start) or set DOCKER_HOST"
IMAGES_HINT = "build it with `make images` (offline: `make base-image` first, see README, Containers)"
CONTAINER_UID = 1000  # the images' non-root user
# The images the compiled pipeline names by default (components/apt_uss_components.py reads the same variables).
DEFAULT_STEP_IMAGES = (("APT_USS_IMAGE", "apt-uss:0.1.0"), ("APT_USS_GPU_IMAGE", "apt-uss-gpu:0.1.0"))
# Variables of a step's environment that name folders the step may write (caches, state, home);
# the first two hold state kept between runs, so every folder already in them must stay writable too.
WRITTEN_PATH_ENV = ("APT_USS_HOME", "APT_USS_CACHE", "HOME", "TMPDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME",
                    "XDG_DATA_HOME", "XDG_STATE_HOME", "TORCH_HOME", "MPLCONFIGDIR")
KEPT_STATE_ENV = ("APT_USS_HOME", "APT_USS_CACHE")
# What a step in a container may need from the caller's environment: S3 and MLflow access.
# Values are passed to the container, never logged.
FORWARDED_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                 "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION", "AWS_REGION", "MLFLOW_TRACKING_TOKEN",
                 "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_S3_ENDPOINT_URL",
                 "MLFLOW_TRACKING_INSECURE_TLS", "MLFLOW_RUN_ID", "APT_USS_THREADS")


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


def step_images(environ=os.environ) -> list[str]:
    """The images the pipeline's steps run in: ``$APT_USS_IMAGE`` and ``$APT_USS_GPU_IMAGE`` or their defaults."""
    return list(dict.fromkeys(environ.get(name) or default for name, default in DEFAULT_STEP_IMAGES))


def written_paths(pipeline_root, environment: dict[str, str] | None = None) -> list[tuple[str, str, bool]]:
    """What a step writes, as (label, absolute path, whether existing folders below it must stay writable):
    the outputs folder (each run adds its own folder there) and the folders its environment names."""
    paths = [("the outputs folder", os.path.abspath(pipeline_root), False)]
    for name in WRITTEN_PATH_ENV:
        value = (environment or {}).get(name, "")
        if value.startswith("/"):
            paths.append((name, os.path.normpath(value), name in KEPT_STATE_ENV))
    return paths


PROBE_MARK = "apt-uss-access-probe: "
# Run in a step image as root (python3 -c PROBE JSON): for each "uid:gid" a child process takes that
# identity (no supplementary groups: never more than a step gets) and checks each path: every
# folder above it searchable, the folder itself (or, where it does not exist yet, the one it would
# be created in) writable by creating and removing a folder there, and with ``tree`` every existing
# folder below it writable. Prints PROBE_MARK and {"uid:gid": null or {"path", "folder", "why"}}.
PROBE = r"""
import json, os, sys, tempfile
args = json.loads(sys.argv[1])

def can_create(folder):
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".apt-uss-probe-", dir=folder))
        return True
    except OSError:
        return False

def problem(path, tree):
    cur = "/"
    for part in [p for p in path.split("/") if p]:
        if not os.access(cur, os.X_OK):
            return {"path": path, "folder": cur, "why": "not searchable"}
        nxt = os.path.join(cur, part)
        if not os.path.lexists(nxt):
            return None if can_create(cur) else {"path": path, "folder": cur, "why": "not writable"}
        cur = nxt
    if not (os.path.isdir(cur) and os.access(cur, os.X_OK) and can_create(cur)):
        return {"path": path, "folder": cur, "why": "not writable"}
    for top, dirs, _ in (os.walk(cur) if tree else ()):
        for d in dirs:
            sub = os.path.join(top, d)
            if not os.path.islink(sub) and not os.access(sub, os.W_OK | os.X_OK):
                return {"path": path, "folder": sub, "why": "not writable"}
    return None

result = {}
for user in args["users"]:
    uid, gid = (int(x) for x in user.split(":"))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            if (os.geteuid(), os.getegid()) != (uid, gid):
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
            found = next(filter(None, (problem(p, t) for p, t in args["paths"])), None)
        except Exception as exc:
            found = {"path": "", "folder": "", "why": f"not checkable as {user}: {exc}"}
        os.write(write, json.dumps(found).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        result[user] = json.loads(f.read() or "null")
    os.waitpid(pid, 0)
print(PROBE_MARK + json.dumps(result), flush=True)
""".replace("PROBE_MARK", repr(PROBE_MARK))


def probe_access(client, image: str, pipeline_root, users, paths) -> dict[str, dict | None]:
    """Run PROBE in ``image`` once, with the outputs folder bind-mounted as kfp.local's DockerRunner
    mounts it (same path, read-write), no network, and the container removed after."""
    root = os.path.abspath(pipeline_root)
    mode = "rw,z" if "name=selinux" in (client.info().get("SecurityOptions") or []) else "rw"
    chunks: list[str] = []
    command = ["python3", "-c", PROBE, json.dumps({"users": list(users), "paths": [[p, t] for _, p, t in paths]})]
    code = run_to_exit_code(client, image, command, {root: {"bind": root, "mode": mode}}, echo=chunks.append,
                            user="0:0", network_mode="none")
    lines = "".join(chunks).splitlines()
    found = [line[len(PROBE_MARK):] for line in lines if line.startswith(PROBE_MARK)]
    if code != 0 or not found:
        tail = " | ".join(lines[-3:]) or "no output"
        raise AptUssError(f"the access check of the outputs folder {root} in {image} failed "
                          f"(exit code {code}): {tail}")
    return json.loads(found[-1])


def _uid(user: str) -> str:
    return user.split(":", 1)[0]


def _why(user: str, problem: dict, labels: dict[str, str], image: str) -> str:
    if not problem.get("path"):
        return f"uid {_uid(user)} could not be checked inside {image}: {problem['why']}"
    label = labels.get(problem["path"], "")
    target = f"{label}={problem['path']}" if label.isupper() else f"{label} {problem['path']}".lstrip()
    if problem["why"] == "not searchable":
        return (f"uid {_uid(user)} cannot reach {target} inside {image} "
                f"(a folder above it, {problem['folder']}, is not searchable)")
    if problem["why"] == "not writable":
        return f"uid {_uid(user)} cannot write {target} inside {image} ({problem['folder']} is not writable)"
    return f"uid {_uid(user)} cannot use {target} inside {image} ({problem['folder']}: {problem['why']})"


def _distinct_images(client, images) -> list[str]:
    """One name per image (the CPU and GPU names are often one image here): one probe each."""
    by_id: dict[str, str] = {}
    for name in dict.fromkeys(map(_tagged, images)):
        by_id.setdefault(client.images.get(name).id, name)
    return list(by_id.values())


def container_user(pipeline_root, environment: dict[str, str] | None = None, images=None, client=None) -> str:
    """The user ("uid:gid") the steps run as, checked inside the step images.

    kfp.local's DockerRunner mounts the outputs folder at the same absolute path in each
    container, so a step reaches it only if every folder above that path is searchable inside
    the image: folders the image has keep the image's modes (Debian's /root is 0700), missing
    ones Docker creates (root, 0755). What the host allows says nothing about that, so one
    short container per distinct image checks it, with the outputs folder and the folders the
    step's ``environment`` names (``WRITTEN_PATH_ENV``).

    As root, the steps run as the images' unprivileged user (the outputs folder is handed to
    it) where that user can write all of them; otherwise as root, with one log line saying why.
    Any other caller's steps run as the caller, so the caller can read and delete what they
    write. Where not even that user can write there: one AptUssError naming the path.
    """
    root = os.path.abspath(pipeline_root)
    os.makedirs(root, exist_ok=True)
    client = client or engine()
    images = list(images or step_images())
    check_images(client, images)
    caller = f"{os.geteuid()}:{os.getegid()}"
    unprivileged = f"{CONTAINER_UID}:{CONTAINER_UID}"
    users = [unprivileged, caller] if os.geteuid() == 0 else [caller]
    paths = written_paths(root, environment)
    labels = {path: label for label, path, _ in reversed(paths)}
    before = os.stat(root)
    handed = users[0] == unprivileged  # as root: the outputs folder is handed to the steps' user
    if handed:
        os.chown(root, CONTAINER_UID, CONTAINER_UID)
    problems: dict[str, str] = {}
    try:
        for image in _distinct_images(client, images):
            found = probe_access(client, image, root, users, paths)
            for user in users:
                if found.get(user) and user not in problems:
                    problems[user] = _why(user, found[user], labels, image)
    except BaseException:
        if handed:
            os.chown(root, before.st_uid, before.st_gid)
        raise
    if handed and unprivileged in problems:
        os.chown(root, before.st_uid, before.st_gid)
    chosen = next((user for user in users if user not in problems), None)
    if chosen is None:
        raise AptUssError(f"the pipeline's steps cannot write their outputs in their containers: "
                          f"{'; '.join(problems.values())}. Put the outputs in a folder they can reach "
                          f"(APT_USS_HOME, make STATE=...)")
    if chosen != users[0]:
        log.info("steps run as uid %s in their containers: %s", _uid(chosen), problems[users[0]])
    return chosen
