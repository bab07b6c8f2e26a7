"""What the local servers (SeaweedFS S3, MLflow on PostgreSQL) share: pid files, ports, private files, stopping."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path


def port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def running_pid(pidfile: Path, command_has: str = "") -> int | None:
    """The pid in ``pidfile`` (its first word) if that process runs and, with ``command_has``, its
    command line contains it (a pid reused by an unrelated process does not count)."""
    try:
        pid = int(Path(pidfile).read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    if command_has:
        try:
            if command_has.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes():
                return None
        except OSError:
            pass  # no /proc: trust the pid file
    return pid


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read (credentials)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def stop_group(pid: int, still_running, timeout: float = 20.0) -> None:
    """SIGTERM the process group of ``pid`` (started with its own session), SIGKILL it if
    ``still_running()`` stays true past ``timeout``."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and still_running():
        time.sleep(0.2)
        try:
            os.waitpid(pid, os.WNOHANG)  # reap it if this process started it
        except ChildProcessError:
            pass
    if still_running():
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
