"""MLflow tracking: one run per pipeline run, with stable metric names."""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path
from urllib.parse import urlparse

from .errors import AptUssError

log = logging.getLogger(__name__)


def state_dir() -> Path:
    """Project-local state (MLflow store, S3 data, KFP outputs): ``$APT_USS_HOME`` or ``./.apt-uss``."""
    return Path(os.environ.get("APT_USS_HOME", ".apt-uss")).resolve()


def resolve_tracking_uri(uri: str = "") -> str:
    """The given URI, else ``$MLFLOW_TRACKING_URI``, else a sqlite store in the state folder."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    if uri:
        return uri
    return f"sqlite:///{state_dir() / 'mlflow.db'}"


def redact(uri: str) -> str:
    """Drop any user:password@ from a URI before it is printed."""
    return re.sub(r"//[^/@]*@", "//***@", uri)


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (four slashes: absolute), else None."""
    prefix = "sqlite:///"
    return Path(uri[len(prefix):]).resolve() if uri.startswith(prefix) else None


def check_tracking(uri: str) -> None:
    """Fail with one line if the tracking store does not answer."""
    import mlflow

    parsed = urlparse(uri)
    db = sqlite_path(uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    elif parsed.scheme in ("http", "https"):
        # Fail fast: MLflow's default retries take minutes against a dead host.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
    try:
        mlflow.MlflowClient(uri).search_experiments(max_results=1)
    except Exception as exc:  # connection, auth and schema errors all mean "cannot track here"
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise AptUssError(f"tracking URI {redact(uri)} does not answer: {first}") from None


def _experiment_id(client, name: str, tracking_uri: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = None
    db = sqlite_path(tracking_uri)
    if db is not None:
        # Keep artifacts beside the local store, not in ./mlruns of whatever directory a step runs in.
        location = (db.parent / "mlartifacts").as_uri()
    return client.create_experiment(name, artifact_location=location)


def log_run(
    tracking_uri: str,
    experiment: str,
    run_name: str,
    params: dict,
    metrics: dict,
    loss_history=None,
    artifacts_dir: str | Path | None = None,
    tags: dict | None = None,
) -> str:
    """Record one pipeline run; returns the MLflow run id.

    Honours ``MLFLOW_RUN_ID`` (set by KFP's MLflow integration) by logging into that run.
    """
    import mlflow

    check_tracking(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri)
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if not run_id:
        exp_id = _experiment_id(client, experiment, tracking_uri)
        run_id = client.create_run(exp_id, run_name=run_name, tags=tags or {}).info.run_id
    elif tags:
        for k, v in tags.items():
            client.set_tag(run_id, k, v)
    try:
        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        entries = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
        if loss_history is not None:
            entries += [Metric("tune_loss", float(r.loss), now, int(r.epoch)) for r in loss_history.itertuples()]
        client.log_batch(run_id, metrics=entries, params=[Param(k, str(v)) for k, v in params.items()])
        if artifacts_dir is not None:
            client.log_artifacts(run_id, str(artifacts_dir))
        client.set_terminated(run_id, "FINISHED")
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    log.info("MLflow run %s in experiment %r at %s", run_id, experiment, redact(tracking_uri))
    return run_id
