"""A local MLflow tracking server on PostgreSQL, its artifacts on the local S3 server.

The cluster's topology in miniature, for containerized runs (``RUNNER=docker``): the
steps reach ``http://127.0.0.1:<port>`` by host networking, as pods reach the cluster's
MLflow Service. The database, logs, pid files and the generated database password live in
one folder (by default ``.apt-uss/mlflow-server``); the password is kept in ``db.env``
(mode 600) and reaches the server through ``PGPASSWORD``, never a command line or a log.
PostgreSQL refuses to run as root, so as root its processes run as ``nobody`` (and its
data moves to a private folder under the system temporary folder where ``nobody`` cannot
reach ``folder``).
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .errors import AptUssError

log = logging.getLogger(__name__)

DEFAULT_PORT = 5000
DEFAULT_DB_PORT = int(os.environ.get("MLFLOW_DB_PORT") or 5433)
DB_USER = DB_NAME = "mlflow"
ENV_FILE = "db.env"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
            return str(candidate)
        raise AptUssError(f"the PostgreSQL program {name!r} is not installed: install PostgreSQL 15 server "
                          "binaries (Debian: apt-get install postgresql-15) or pass --tracking-uri of a server")
    return found


def _as_db_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "nobody", "--", *cmd] if os.geteuid() == 0 else cmd


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().split()[0])
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError, IndexError):
        return None


def _password(folder: Path) -> str:
    path = folder / ENV_FILE
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.startswith("PGPASSWORD="):
                return line.split("=", 1)[1]
    password = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"PGPASSWORD={password}\n")
    return password


NOBODY = (65534, 65534)


def _reachable_by_others(folder: Path) -> bool:
    """Whether a user other than the owner can walk down to ``folder`` (x bit for others on each ancestor)."""
    return all(p.stat().st_mode & 0o001 or p.stat().st_uid == NOBODY[0] for p in [folder, *folder.parents])


def database_dir(folder: Path) -> Path:
    """Where the database lives: ``folder/db``, unless PostgreSQL runs as ``nobody`` and cannot reach
    it (a private temporary folder, as pytest's and mktemp's are): then one folder per server under
    the system temporary folder, owned by nobody and private to it."""
    if os.geteuid() != 0 or _reachable_by_others(folder):
        return folder / "db"
    import hashlib
    import tempfile

    return Path(tempfile.gettempdir()) / f"apt-uss-pg-{hashlib.sha256(str(folder).encode()).hexdigest()[:16]}"


def _database_up(folder: Path, db_port: int, password: str, timeout: float) -> None:
    db = database_dir(folder)
    data = db / "pgdata"
    owner_ids = NOBODY if os.geteuid() == 0 else (os.getuid(), os.getgid())
    db.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chown(db, *owner_ids)
    if not (data / "PG_VERSION").is_file():
        data.mkdir(parents=True, exist_ok=True)
        pwfile = db / "pgdata.pw"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(password + "\n")
        try:
            for path in (data, pwfile):
                os.chown(path, *owner_ids)
            _run(_as_db_owner([_tool("initdb"), "-D", str(data), "-U", DB_USER, "--auth=scram-sha-256",
                               f"--pwfile={pwfile}", "-E", "UTF8"]), db, "initdb")
        finally:
            pwfile.unlink(missing_ok=True)
    if _pid(data / "postmaster.pid") and _answers(db_port):
        return
    if _answers(db_port):
        raise AptUssError(f"port {db_port} on 127.0.0.1 is taken by another program: stop it or pass another "
                          "--db-port")
    logfile = db / "postgres.log"
    if not logfile.exists():
        logfile.touch()
        os.chown(logfile, *owner_ids)
    _run(_as_db_owner([_tool("pg_ctl"), "-D", str(data), "-l", str(logfile), "-w", "-t", str(int(timeout)),
                       "-o", f"-k {data} -h 127.0.0.1 -p {db_port}", "start"]), logfile, "PostgreSQL")
    _create_database(db_port, password)


def _create_database(db_port: int, password: str) -> None:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=db_port, user=DB_USER, password=password, dbname="postgres")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,))
            if cur.fetchone() is None:
                cur.execute(f"CREATE DATABASE {DB_NAME}")
    finally:
        conn.close()


def _run(cmd: list[str], where: Path, what: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise AptUssError(f"{what} failed (exit {done.returncode}): {' | '.join(tail)} (see {where})")


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def up(folder: str | Path, s3_env: dict[str, str], artifacts_uri: str, port: int = DEFAULT_PORT,
       db_port: int = DEFAULT_DB_PORT, timeout: float = 120.0) -> str:
    """Start PostgreSQL and the MLflow server unless they run; return the tracking URI.

    ``artifacts_uri`` (an ``s3://`` prefix) is where the server stores run artifacts, reached
    with ``s3_env`` (the endpoint and credentials of the S3 server): clients upload through
    the server (``mlflow-artifacts:``), so they need no S3 credentials for MLflow.
    """
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    uri = f"http://127.0.0.1:{port}"
    pidfile = folder / "mlflow.pid"
    if _pid(pidfile) and _healthy(port):
        return uri
    if _answers(port):
        raise AptUssError(f"port {port} on 127.0.0.1 is taken by another program: stop it or pick another "
                          "MLFLOW_PORT")
    started = time.monotonic()
    password = _password(folder)
    _database_up(folder, db_port, password, timeout)
    env = {**os.environ, **s3_env, "PGPASSWORD": password,
           "MLFLOW_S3_ENDPOINT_URL": s3_env.get("AWS_ENDPOINT_URL", "")}
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    logfile = open(folder / "mlflow.log", "ab")
    proc = subprocess.Popen(
        [mlflow, "server", "--backend-store-uri", f"postgresql+psycopg2://{DB_USER}@127.0.0.1:{db_port}/{DB_NAME}",
         "--artifacts-destination", artifacts_uri, "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
    )
    pidfile.write_text(str(proc.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AptUssError(f"the MLflow server exited with code {proc.returncode}: see {folder / 'mlflow.log'}")
        if _healthy(port):
            log.info("MLflow server on PostgreSQL up at %s in %.1f s (artifacts: %s)", uri,
                     time.monotonic() - started, artifacts_uri)
            return uri
        time.sleep(0.5)
    down(folder)
    raise AptUssError(f"the MLflow server did not answer on port {port} within {timeout:.0f} s: "
                      f"see {folder / 'mlflow.log'}")


def down(folder: str | Path) -> list[str]:
    """Stop the MLflow server and PostgreSQL if they run; return what was stopped."""
    folder = Path(folder).resolve()
    stopped = []
    pid = _pid(folder / "mlflow.pid")
    if pid:
        os.killpg(pid, signal.SIGTERM)  # its own session: the gunicorn/uvicorn workers go too
        for _ in range(100):
            try:
                os.waitpid(pid, os.WNOHANG)  # reap it if this process started it
            except ChildProcessError:
                pass
            if _pid(folder / "mlflow.pid") is None:
                break
            time.sleep(0.1)
        stopped.append("MLflow server")
    (folder / "mlflow.pid").unlink(missing_ok=True)
    db = database_dir(folder)
    if _pid(db / "pgdata" / "postmaster.pid"):
        _run(_as_db_owner([_tool("pg_ctl"), "-D", str(db / "pgdata"), "-m", "fast", "-w", "stop"]),
             db / "postgres.log", "stopping PostgreSQL")
        stopped.append("PostgreSQL")
    return stopped
