"""MLflow tracking: one run per pipeline run, with stable metric names."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path
from urllib.parse import urlparse

from apt_uss.errors import AptUssError
from apt_uss.io.paths import state_dir
from apt_uss.io.uris import redact
from apt_uss.params.spec import BY_NAME, parse_value

log = logging.getLogger(__name__)


def recorded_values(params: dict) -> dict:
    """``params`` as MLflow and the report record them: integer parameters as integers (KFP hands the values of a
    dict parameter as text, integers as ``20.0``), URIs without a password or a query string (a presigned URL's
    signature: ``redact``); everything else as given."""
    def recorded(name, value):
        if name in BY_NAME and BY_NAME[name].type is int:
            try:
                return parse_value(name, value)
            except AptUssError:  # not this function's to check: recorded as given
                return value
        return redact(value) if name.endswith("_uri") and isinstance(value, str) else value

    return {k: recorded(k, v) for k, v in params.items()}


def end_run(tracking_uri: str, run_id: str, status: str = "FINISHED") -> None:
    """Close a run ``log_run`` left open (``finish=False``): FINISHED, or FAILED."""
    import mlflow

    mlflow.MlflowClient(tracking_uri).set_terminated(run_id, status)


def resolve_tracking_uri(uri: str = "") -> str:
    """The given URI, else ``$MLFLOW_TRACKING_URI``, else a sqlite store in the state folder."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    if uri:
        return uri
    return f"sqlite:///{state_dir() / 'mlflow.db'}"


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
        raise AptUssError(f"tracking URI {redact(uri)} does not answer: {_first_line(exc)}") from None


# MLflow's own experiment-kind tag: the UI opens a "custom model development" experiment on its runs table,
# not on the GenAI overview (traces, latency) it shows experiments of unknown kind.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
NOTE_TAG = "mlflow.note.content"  # the run's description in the UI (Markdown)


def _experiment_of(client, name: str, tracking_uri: str, parent_id: str | None) -> str:
    """The experiment a run goes in: its parent's when it has one (MLflow shows runs nested only within one
    experiment, and a parent made by KFP's MLflow integration may sit in another experiment than ``name``),
    otherwise ``name``'s."""
    if parent_id:
        return client.get_run(parent_id).info.experiment_id
    return _experiment_id(client, name, tracking_uri)


def _experiment_id(client, name: str, tracking_uri: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if EXPERIMENT_KIND_TAG not in exp.tags:  # made before the tag was set, or by another tool
            client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return exp.experiment_id
    location = None
    db = sqlite_path(tracking_uri)
    if db is not None:
        # Keep artifacts beside the local store, not in ./mlruns of whatever directory a step runs in.
        location = (db.parent / "mlartifacts").as_uri()
    try:
        return client.create_experiment(name, artifact_location=location,
                                        tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
    except Exception:  # another task (a sweep's cells start together) created it first
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def param_text(value) -> str:
    """A parameter as MLflow shows it: integers as integers (``20``, not ``20.0``), lists and dicts as JSON."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def set_description(tracking_uri: str, run_id: str, text: str) -> None:
    import mlflow

    mlflow.MlflowClient(tracking_uri).set_tag(run_id, NOTE_TAG, text)


def run_description(run_id: str, summary: dict, params: dict, report: str = "report.html") -> str:
    """The run's description (Markdown): what ran, its headline numbers, and a link to the HTML report."""
    gain = summary.get("sdr_gain_pooled_median")
    lines = [f"**APT on {params.get('dataset', '?')}, {params.get('n_shot', '?')}-shot, backbone "
             f"{params.get('backbone', '?')}.**"]
    if gain is not None:
        lines.append(f"Pooled median SDR {summary.get('sdr_baseline_pooled_median', float('nan')):.2f} dB with the "
                     f"initial prompts, {summary.get('sdr_apt_pooled_median', float('nan')):.2f} dB tuned "
                     f"({gain:+.2f} dB); {int(summary.get('classes_improved', 0))} of "
                     f"{int(summary.get('n_classes', 0))} classes improved.")
    lines.append(f"[Open the HTML report](get-artifact?path={report}&run_uuid={run_id}) (also under Artifacts, "
                 f"`{report}`).")
    return "\n\n".join(lines)


RUN_TAG = "apt_uss.run_name"
KFP_RUN_TAG = "apt_uss.kfp_run_id"  # the Kubeflow run an MLflow run belongs to, where a step knows it
PARENT_TAG = "mlflow.parentRunId"  # MLflow nests a run under the run this tag names


def kfp_tag(kfp_run_id: str) -> dict:
    """The tag naming the Kubeflow run (``dsl.PIPELINE_JOB_ID_PLACEHOLDER``) a step belongs to; none without one."""
    return {KFP_RUN_TAG: kfp_run_id} if kfp_run_id else {}


def open_run(tracking_uri: str, experiment: str, run_name: str, tags: dict | None = None,
             nested: bool = False) -> str:
    """The MLflow run of pipeline run ``run_name``: the unfinished one with that name, else a new one.

    Tuning (live loss) and the report (results) are separate tasks, possibly retried: both
    find the run by the pipeline run's name, so one pipeline run is one MLflow run. A
    finished run of the same name is never reopened (its results stay as they were).
    With ``KFP_RUN_TAG`` among ``tags`` (the Kubeflow run's id), a run of the same name from another Kubeflow
    run is an error: the name keys the run's MLflow run, S3 folder and tuning state, and a "Clone run" left
    unrenamed would share them.
    ``MLFLOW_RUN_ID`` (set by KFP's MLflow integration: the run of the whole pipeline run) takes
    precedence for a top-level run. A nested run (``nested``, or tags naming a parent: a sweep's cell)
    never takes it: it is found or created by name, and with ``MLFLOW_RUN_ID`` set and no parent
    named, it is nested under that run, so a sweep's cells stay runs of their own under the pipeline's.
    """
    import mlflow

    _check_run_name(run_name)
    client = mlflow.MlflowClient(tracking_uri)
    tags = dict(tags or {})
    nested = nested or PARENT_TAG in tags
    run_id = None if nested else os.environ.get("MLFLOW_RUN_ID")
    if nested and PARENT_TAG not in tags and os.environ.get("MLFLOW_RUN_ID"):
        tags[PARENT_TAG] = os.environ["MLFLOW_RUN_ID"]
    if not run_id:
        exp_id = _experiment_of(client, experiment, tracking_uri, tags.get(PARENT_TAG))
        same_name = _runs_named(client, exp_id, run_name)
        _refuse_other_kubeflow_runs(same_name, tags.get(KFP_RUN_TAG, ""), run_name, experiment)
        found = [r for r in same_name if r.info.status != "FINISHED"]
        if found:
            run_id = found[0].info.run_id
            if found[0].info.status != "RUNNING":  # a retry after a failed attempt
                client.update_run(run_id, status="RUNNING")
        else:
            run_id = client.create_run(exp_id, run_name=run_name, tags={RUN_TAG: run_name}).info.run_id
    for k, v in tags.items():
        client.set_tag(run_id, k, v)
    return run_id


def _check_run_name(run_name: str) -> None:
    """A run is found by its name in an MLflow filter string, which cannot hold quotes or backslashes."""
    if "'" in run_name or "\\" in run_name:
        raise AptUssError(f"run name {run_name!r} may not contain quotes or backslashes")


def _runs_named(client, exp_id: str, run_name: str) -> list:
    """The runs of experiment ``exp_id`` that pipeline run ``run_name`` made (its ``RUN_TAG``)."""
    return client.search_runs([exp_id], filter_string=f"tags.`{RUN_TAG}` = '{run_name}'")


def _refuse_other_kubeflow_runs(same_name: list, kfp_run_id: str, run_name: str, experiment: str) -> None:
    """Two Kubeflow runs under one name would share an MLflow run, an S3 folder and a tuning state: fail where a run
    of ``same_name`` belongs to another Kubeflow run than ``kfp_run_id`` (nothing to compare without one)."""
    others = sorted({r.data.tags.get(KFP_RUN_TAG, "") for r in same_name} - {"", kfp_run_id}) if kfp_run_id else []
    if others:
        raise AptUssError(f"the run name {run_name!r} is taken: MLflow experiment {experiment!r} holds a run of "
                          f"that name from another pipeline run (KFP run {others[0]}); give this run a name of its "
                          "own")


def check_run_name_free(tracking_uri: str, experiment: str, run_name: str, kfp_run_id: str) -> None:
    """Fail now where ``open_run`` would refuse ``run_name`` later, as taken by another Kubeflow run's top-level run:
    a sweep checks its name before its cells tune, not only at its aggregate. Nothing to check without a Kubeflow
    run id, or where ``MLFLOW_RUN_ID`` (KFP's MLflow integration) names the run."""
    import mlflow

    if not kfp_run_id or os.environ.get("MLFLOW_RUN_ID"):
        return
    _check_run_name(run_name)
    check_tracking(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is not None:
        _refuse_other_kubeflow_runs(_runs_named(client, exp.experiment_id, run_name), kfp_run_id, run_name, experiment)


def finished_children(tracking_uri: str, experiment: str, parent_id: str) -> dict[str, str]:
    """Run name (``RUN_TAG``) -> id of the finished runs nested under ``parent_id``."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    exp_id = _experiment_of(client, experiment, tracking_uri, parent_id)
    found = client.search_runs([exp_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_id}' and "
                                                         "attributes.status = 'FINISHED'")
    return {r.data.tags.get(RUN_TAG, r.info.run_name): r.info.run_id for r in found}


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return redact(text.splitlines()[0][:200]) if text else type(exc).__name__


class EpochLossLogger:
    """``on_epoch`` callback for tuning: logs ``tune_loss`` at step = epoch while the task runs.

    A tracking hiccup mid-training costs a point on a chart, not the training: it is logged
    as a warning (the loss table artifact keeps every epoch).
    """

    def __init__(self, tracking_uri: str, run_id: str):
        import mlflow

        self.client = mlflow.MlflowClient(tracking_uri)
        self.run_id = run_id

    def __call__(self, epoch: int, loss: float) -> None:
        try:
            self.client.log_metric(self.run_id, "tune_loss", float(loss), step=int(epoch))
        except Exception as exc:
            log.warning("MLflow: could not log tune_loss for epoch %d: %s", epoch, _first_line(exc))

    def mark_failed(self) -> None:
        """The task is failing: show the run as failed rather than running forever (best effort)."""
        try:
            self.client.set_terminated(self.run_id, "FAILED")
        except Exception as exc:
            log.warning("MLflow: could not mark run %s failed: %s", self.run_id, _first_line(exc))


PER_CLASS_METRICS = ("sdr_baseline_median", "sdr_apt_median", "sdr_gain")


def per_class_metrics(per_class) -> dict[str, float]:
    """``<metric>/<class>`` for each class (e.g. ``sdr_gain/dog``): MLflow's charts group them by metric,
    and the same class has the same name in every run, so the comparison view lines runs up."""
    out = {}
    for row in per_class.itertuples(index=False):
        name = re.sub(r"[^A-Za-z0-9_.\- ]", "_", str(row.target_class))
        for metric in PER_CLASS_METRICS:
            out[f"{metric}/{name}"] = float(getattr(row, metric))
    return out


def log_run(
    tracking_uri: str,
    experiment: str,
    run_name: str,
    params: dict,
    metrics: dict,
    loss_history=None,
    artifacts_dir: str | Path | None = None,
    tags: dict | None = None,
    finish: bool = True,
) -> str:
    """Record a pipeline run's results in its MLflow run and mark it finished; returns the run id.

    ``finish`` False leaves the run open for what the caller still adds (``end_run`` closes it): a retried task
    finds an open run again, where a finished one would make it start a second.
    Callers probe the store first (``check_tracking``), before the work whose results this records.
    """
    import mlflow
    from mlflow.entities import Metric, Param

    client = mlflow.MlflowClient(tracking_uri)
    run_id = open_run(tracking_uri, experiment, run_name, tags)
    try:
        now = int(time.time() * 1000)
        entries = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
        if loss_history is not None:
            logged = {m.step for m in client.get_metric_history(run_id, "tune_loss")}
            entries += [Metric("tune_loss", float(r.loss), now, int(r.epoch))
                        for r in loss_history.itertuples() if int(r.epoch) not in logged]
        for start in range(0, len(entries), 900):  # MLflow takes at most 1000 metrics per batch
            client.log_batch(run_id, metrics=entries[start : start + 900])
        client.log_batch(run_id, params=[Param(k, param_text(v)) for k, v in params.items()])
        if artifacts_dir is not None:
            client.log_artifacts(run_id, str(artifacts_dir))
        if finish:
            client.set_terminated(run_id, "FINISHED")
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    log.info("MLflow run %s in experiment %r at %s", run_id, experiment, redact(tracking_uri))
    return run_id
