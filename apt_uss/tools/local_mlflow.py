"""A local MLflow tracking server on PostgreSQL, its artifacts on the local S3 server.

The cluster's topology in miniature, for containerized runs (``RUNNER=docker``): the
steps reach ``http://127.0.0.1:<port>`` by host networking, as pods reach the cluster's
MLflow Service. The pid file, logs and the generated database password live in one folder
(by default ``.apt-uss/mlflow-server``); the password is kept in ``db.env`` (mode 600) and
reaches the server through ``PGPASSWORD``, never a command line or a log. The database is
``<folder>/db``. PostgreSQL refuses to run as root, so as root it runs as ``nobody``; where
``nobody`` cannot reach the folder (a private temporary folder, as pytest's and mktemp's
are), the database goes to a fresh private folder under the system temporary folder,
recorded in ``<folder>/db.location``, and ``down(purge=True)`` removes it.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from apt_uss.errors import AptUssError
from apt_uss.tools.local_process import port_answers, running_pid, stop_group, write_private

log = logging.getLogger(__name__)

DEFAULT_PORT = 5000
DEFAULT_DB_PORT = 5433  # beside a system PostgreSQL on 5432
DB_USER = DB_NAME = "mlflow"
ENV_FILE = "db.env"
NOBODY = (65534, 65534)
ARTIFACTS_PREFIX = "mlflow-artifacts"  # under the runs' bucket, as the chart's mlflowArtifactsPrefix


def _port_from_env(name: str, default: int) -> int:
    text = os.environ.get(name) or str(default)
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise AptUssError(f"{name}={text!r} is not valid: use a port number, 1-65535")
    return int(text)


def server_port() -> int:
    """``$MLFLOW_PORT``, else 5000."""
    return _port_from_env("MLFLOW_PORT", DEFAULT_PORT)


def db_port() -> int:
    """``$MLFLOW_DB_PORT``, else 5433."""
    return _port_from_env("MLFLOW_DB_PORT", DEFAULT_DB_PORT)


def artifacts_destination(artifact_uri: str, folder: Path) -> str:
    """Where the server keeps run artifacts: beside the runs' outputs in their bucket, or in
    ``folder/artifacts`` for runs without S3 (``artifact_uri`` empty)."""
    if not artifact_uri:
        return str(Path(folder).resolve() / "artifacts")
    from apt_uss.io.storage import parse_s3_uri

    return f"s3://{parse_s3_uri(artifact_uri)[0]}/{ARTIFACTS_PREFIX}"


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


def _db_owner() -> tuple[int, int]:
    return NOBODY if os.geteuid() == 0 else (os.getuid(), os.getgid())


def _reachable_by_others(folder: Path) -> bool:
    """Whether a user other than the owner can walk down to ``folder`` (x bit for others on each ancestor)."""
    return all(p.stat().st_mode & 0o001 for p in [folder, *folder.parents])


def _private_dir_of(path: Path, owner: int) -> bool:
    """A real folder (not a link) owned by ``owner`` and closed to others: safe to hand to PostgreSQL."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == owner and not st.st_mode & 0o077


def database_dir(folder: Path, create: bool = False) -> Path | None:
    """Where the server's database lives (see the module's doc); None if it has none yet and not ``create``."""
    folder = Path(folder).resolve()
    if os.geteuid() != 0 or _reachable_by_others(folder):
        db = folder / "db"
        if create:
            db.mkdir(mode=0o700, exist_ok=True)
            if not _private_dir_of(db, _db_owner()[0]):
                os.chown(db, *_db_owner(), follow_symlinks=False)
        return db if db.is_dir() else None
    record = folder / "db.location"
    if record.is_file():
        db = Path(record.read_text().strip())
        if _private_dir_of(db, NOBODY[0]):
            return db
    if not create:
        return None
    # mkdtemp: a new folder with a random name, created by us and private: no link can be planted in its place.
    db = Path(tempfile.mkdtemp(prefix="apt-uss-pg-"))
    os.chown(db, *NOBODY, follow_symlinks=False)
    record.write_text(str(db) + "\n")
    return db


def _password(folder: Path) -> str:
    path = folder / ENV_FILE
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.startswith("PGPASSWORD="):
                return line.split("=", 1)[1]
    password = os.urandom(18).hex()
    write_private(path, f"PGPASSWORD={password}\n")
    return password


def _run(cmd: list[str], where: Path, what: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise AptUssError(f"{what} failed (exit {done.returncode}): {' | '.join(tail)} (see {where})")


def _database_up(folder: Path, port: int, password: str, timeout: float) -> Path:
    db = database_dir(folder, create=True)
    data = db / "pgdata"
    if not (data / "PG_VERSION").is_file():
        pwfile = db / "initdb.pw"
        write_private(pwfile, password + "\n")
        try:
            os.chown(pwfile, *_db_owner())
            _run(_as_db_owner([_tool("initdb"), "-D", str(data), "-U", DB_USER, "--auth=scram-sha-256",
                               f"--pwfile={pwfile}", "-E", "UTF8"]), db, "initdb")
        finally:
            pwfile.unlink(missing_ok=True)
    if running_pid(data / "postmaster.pid", "postgres") and port_answers(port):
        return db
    if port_answers(port):
        raise AptUssError(f"port {port} on 127.0.0.1 is taken by another program: stop it or set MLFLOW_DB_PORT")
    logfile = db / "postgres.log"
    if not logfile.exists():
        logfile.touch()
        os.chown(logfile, *_db_owner())
    _run(_as_db_owner([_tool("pg_ctl"), "-D", str(data), "-l", str(logfile), "-w", "-t", str(int(timeout)),
                       "-o", f"-k {data} -h 127.0.0.1 -p {port}", "start"]), logfile, "PostgreSQL")
    _create_database(db, port, password)
    return db


def _create_database(db: Path, port: int, password: str) -> None:
    import psycopg2

    try:
        conn = psycopg2.connect(host="127.0.0.1", port=port, user=DB_USER, password=password, dbname="postgres",
                                connect_timeout=10)
    except psycopg2.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AptUssError(f"cannot log in to the local PostgreSQL ({reason}); its data is in {db}: "
                          "`make mlflow-server-down PURGE=1` starts it afresh (the local runs' tracking "
                          "data is lost)") from None
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,))
            if cur.fetchone() is None:
                cur.execute(f"CREATE DATABASE {DB_NAME}")
    finally:
        conn.close()


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _server(folder: Path) -> tuple[int, int] | None:
    """(pid, port) of this folder's running server, from ``mlflow.pid`` ("pid port")."""
    pidfile = folder / "mlflow.pid"
    pid = running_pid(pidfile, "mlflow")
    if pid is None:
        return None
    words = pidfile.read_text().split()
    return pid, int(words[1]) if len(words) > 1 and words[1].isdigit() else DEFAULT_PORT


def up(folder: str | Path, s3_env: dict[str, str], artifacts_uri: str, port: int = DEFAULT_PORT,
       timeout: float = 120.0) -> str:
    """Start PostgreSQL and the MLflow server unless they run; return the tracking URI.

    ``artifacts_uri`` (an ``s3://`` prefix, its bucket made if missing, or a folder) is where the
    server stores run artifacts, reached with ``s3_env`` (the endpoint and credentials of the S3
    server): clients upload through the server (``mlflow-artifacts:``), so they need no S3 keys for MLflow.
    """
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    uri = f"http://127.0.0.1:{port}"
    running = _server(folder)
    if running and running[1] != port:
        raise AptUssError(f"the MLflow server of {folder} runs on port {running[1]}, not {port}: use "
                          f"MLFLOW_PORT={running[1]}, or stop it first (make mlflow-server-down)")
    if running and _healthy(port):
        return uri
    if port_answers(port):
        raise AptUssError(f"port {port} on 127.0.0.1 is taken by another program: stop it or pick another "
                          "MLFLOW_PORT")
    if artifacts_uri.startswith("s3://"):
        from apt_uss.io.storage import ensure_bucket

        ensure_bucket(artifacts_uri)
    started = time.monotonic()
    password = _password(folder)
    database = db_port()
    log.info("starting PostgreSQL on 127.0.0.1:%d and the MLflow server on %s (up to %.0f s)", database, uri,
             timeout)
    _database_up(folder, database, password, timeout)
    env = {**os.environ, **s3_env, "PGPASSWORD": password,
           "MLFLOW_S3_ENDPOINT_URL": s3_env.get("AWS_ENDPOINT_URL", "")}
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    with open(folder / "mlflow.log", "ab") as logfile:
        proc = subprocess.Popen(
            [mlflow, "server", "--backend-store-uri", f"postgresql+psycopg2://{DB_USER}@127.0.0.1:{database}/{DB_NAME}",
             "--artifacts-destination", artifacts_uri, "--host", "127.0.0.1", "--port", str(port),
             "--workers", "2"],
            stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
        )
    (folder / "mlflow.pid").write_text(f"{proc.pid} {port}\n")
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


def down(folder: str | Path, purge: bool = False) -> list[str]:
    """Stop the MLflow server and PostgreSQL if they run; return what was stopped. ``purge``
    also deletes the database (wherever it lives) and its password."""
    folder = Path(folder).resolve()
    stopped = []
    running = _server(folder)
    if running:
        stop_group(running[0], lambda: _server(folder) is not None)
        stopped.append("MLflow server")
    (folder / "mlflow.pid").unlink(missing_ok=True)
    db = database_dir(folder)
    if db is not None and running_pid(db / "pgdata" / "postmaster.pid", "postgres"):
        _run(_as_db_owner([_tool("pg_ctl"), "-D", str(db / "pgdata"), "-m", "fast", "-w", "stop"]),
             db / "postgres.log", "stopping PostgreSQL")
        stopped.append("PostgreSQL")
    if purge:
        if db is not None:
            shutil.rmtree(db, ignore_errors=True)
            stopped.append(f"database {db} deleted")
        for name in (ENV_FILE, "db.location"):
            (folder / name).unlink(missing_ok=True)
    return stopped
