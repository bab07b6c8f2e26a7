"""Side-by-side comparison of chosen MLflow runs (``make compare``), in the spirit of the paper's Tables 1-2."""

from __future__ import annotations

import logging

import pandas as pd

from apt_uss.errors import AptUssError
from apt_uss.io.tracking import RUN_TAG
from apt_uss.io.uris import redact

SETTINGS = ("dataset", "n_shot", "backbone", "tune", "epochs", "lr")
log = logging.getLogger(__name__)

# MLflow parameters of a run's provenance (the report records them): weights, dataset content, code.
PROVENANCE_PREFIX = "provenance."


def provenance_of(params: dict) -> dict[str, str]:
    return {k[len(PROVENANCE_PREFIX):]: v for k, v in params.items() if k.startswith(PROVENANCE_PREFIX)}


def provenance_differences(runs: list, ignore: tuple = ()) -> list[str]:
    """The provenance entries (weights, dataset fingerprint, code) on which ``runs`` disagree."""
    seen = [provenance_of(r.data.params) for r in runs]
    keys = sorted({k for p in seen for k in p} - set(ignore))
    return [k for k in keys if len({p.get(k, "(not recorded)") for p in seen}) > 1]


NUMBERS = (("baseline_pooled", "sdr_baseline_pooled_median"), ("apt_pooled", "sdr_apt_pooled_median"),
           ("gain_pooled", "sdr_gain_pooled_median"), ("baseline_class_mean", "sdr_baseline_class_mean"),
           ("apt_class_mean", "sdr_apt_class_mean"), ("gain_class_mean", "sdr_gain_class_mean"))


def headline_numbers(metrics: dict) -> dict:
    """A run's six headline SDRs under short names (NaN where missing) and ``classes_improved`` as "k/n"."""
    row = {name: metrics.get(metric, float("nan")) for name, metric in NUMBERS}
    improved = metrics.get("classes_improved"), metrics.get("n_classes")
    row["classes_improved"] = f"{int(improved[0])}/{int(improved[1])}" if None not in improved else ""
    return row


def finished_result_runs(client, experiment: str, tracking_uri: str, hint: str = "", max_results: int | None = None):
    """The finished runs of ``experiment`` that hold results, newest first; one clear error if there are none."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise AptUssError(f"experiment {experiment!r} does not exist at {redact(tracking_uri)}{hint}")
    extra = {"max_results": max_results} if max_results else {}
    found = client.search_runs([exp.experiment_id], filter_string="attributes.status = 'FINISHED'",
                               order_by=["attributes.start_time DESC"], **extra)
    runs = [r for r in found if "sdr_apt_pooled_median" in r.data.metrics]
    if not runs:
        raise AptUssError(f"experiment {experiment!r} has no finished runs with results")
    return runs


def headline_cells(r) -> str:
    """``baseline APT gain | baseline APT gain | improved`` of one table row (pooled, then class mean)."""
    return (f"{r.baseline_pooled:8.2f} {r.apt_pooled:6.2f} {r.gain_pooled:+6.2f} | "
            f"{r.baseline_class_mean:8.2f} {r.apt_class_mean:6.2f} {r.gain_class_mean:+6.2f} | {r.classes_improved}")


HEADLINE_HEAD = (f"{'baseline':>8s} {'APT':>6s} {'gain':>6s} | {'baseline':>8s} {'APT':>6s} {'gain':>6s}")


def _row(run) -> dict:
    row = {"run_id": run.info.run_id, "run": run.data.tags.get(RUN_TAG, run.info.run_name or "")}
    row.update({k: run.data.params.get(k, "") for k in SETTINGS})
    row.update(headline_numbers(run.data.metrics))
    return row


def compare_runs(tracking_uri: str, run_ids: list[str] | None = None, experiment: str = "apt-uss",
                 last: int = 10) -> pd.DataFrame:
    """One row per run: its settings and headline SDRs. ``run_ids`` picks runs (in that order), which must
    agree on their provenance (weights, data, code); otherwise the ``last`` finished runs of ``experiment``
    with results that agree with the newest one on it, newest first (the others are logged as left out)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(tracking_uri)
    if run_ids:
        runs = []
        for run_id in run_ids:
            try:
                runs.append(client.get_run(run_id))
            except MlflowException:
                raise AptUssError(f"run {run_id!r} is not in the tracking store at {redact(tracking_uri)}") from None
    else:
        last = max(int(last), 1)
        found = finished_result_runs(client, experiment, tracking_uri, max_results=last * 4)
        runs = []
        for run in found:
            apart = provenance_differences([found[0], run])
            if apart:
                log.info("compare: run %s left out: it differs from the newest run in %s", run.info.run_id,
                         ", ".join(apart))
            elif len(runs) < last:
                runs.append(run)
    differ = provenance_differences(runs)
    if differ:
        raise AptUssError(f"the runs differ in {', '.join(differ)} (MLflow parameters {PROVENANCE_PREFIX}*): "
                          "their numbers come from other weights, data or code; compare runs that agree on them")
    return pd.DataFrame([_row(r) for r in runs])


def format_comparison(table: pd.DataFrame) -> str:
    head = (f"{'run':<34s} {'dataset':<9s} {'n_shot':>6s} {'backbone':<8s} {'tune':<7s} {'epochs':>6s} {'lr':>7s} | "
            f"{HEADLINE_HEAD} | improved")
    lines = ["Median SDR (dB): pooled over test mixtures | mean of class medians", head]
    for r in table.itertuples():
        lines.append(f"{str(r.run)[:34]:<34s} {str(r.dataset)[:9]:<9s} {str(r.n_shot):>6s} {str(r.backbone)[:8]:<8s} "
                     f"{str(r.tune)[:7]:<7s} {str(r.epochs):>6s} {str(r.lr):>7s} | {headline_cells(r)}")
    return "\n".join(lines)
