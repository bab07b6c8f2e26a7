"""Few-shot tables from MLflow runs, in the layout of the paper's Table 2."""

from __future__ import annotations

import logging

import pandas as pd

from apt_uss.errors import AptUssError
from apt_uss.io.tracking import _experiment_id
from apt_uss.params.spec import RESULT_PARAMETERS
from apt_uss.results.compare import (
    HEADLINE_HEAD,
    finished_result_runs,
    headline_cells,
    headline_numbers,
    provenance_differences,
)

log = logging.getLogger(__name__)

SHOT_ORDER = {"1": 0, "5": 1, "10": 2, "full": 3}
# A sweep varies n_shot only: rows must agree on every other parameter that changes the numbers.
SAME_SETTINGS = tuple(name for name in RESULT_PARAMETERS if name not in ("n_shot", "device", "audio_examples_per_class"))


def few_shot_table(tracking_uri: str, experiment: str) -> pd.DataFrame:
    """The latest finished run of each n_shot in ``experiment``: baseline, APT and gain, pooled and class mean.

    Only runs with the same settings (``SAME_SETTINGS``) and provenance as the experiment's latest run are
    used, so an older sweep with other epochs or another backbone never mixes in. For each n_shot missing
    from the table because its runs differ, ``attrs["left_out"]`` names its latest run and what differs
    (with how many more such runs there were); ``format_few_shot_table`` prints it under the table.
    """
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    runs = [r for r in finished_result_runs(client, experiment, tracking_uri, hint=": run `make sweep` first")
            if "n_shot" in r.data.params]
    if not runs:
        raise AptUssError(f"experiment {experiment!r} has no finished runs with results")
    reference = {k: runs[0].data.params.get(k) for k in SAME_SETTINGS}
    rows, seen, left_out = [], set(), {}
    for run in runs:
        shot = run.data.params["n_shot"]
        if shot in seen:
            continue
        differ = [k for k, v in reference.items() if run.data.params.get(k) != v] + \
            provenance_differences([runs[0], run])
        if differ:  # never mixed into the table, and named under it (the latest such run of each n_shot)
            if shot not in left_out:
                left_out[shot] = [f"run {run.info.run_id} (n_shot {shot}) differs from the latest run in "
                                  f"{', '.join(differ)}", 0]
            left_out[shot][1] += 1
            log.info("few-shot table: run %s (n_shot %s) left out: it differs from the latest run in %s",
                     run.info.run_id, shot, ", ".join(differ))
            continue
        seen.add(shot)
        rows.append({"n_shot": shot, **headline_numbers(run.data.metrics),
                     "backbone": run.data.params.get("backbone", ""), "epochs": run.data.params.get("epochs", ""),
                     "run_id": run.info.run_id})
    table = pd.DataFrame(rows)
    table = table.sort_values("n_shot", key=lambda s: s.map(lambda v: SHOT_ORDER.get(v, 99)), ignore_index=True)
    table.attrs["left_out"] = [line + (f" (and {n - 1} older such run(s))" if n > 1 else "")
                               for shot, (line, n) in left_out.items() if shot not in seen]
    return table


def format_few_shot_table(table: pd.DataFrame) -> str:
    lines = ["Median SDR (dB) by number of training clips per class: pooled over test mixtures | mean of class medians",
             f"{'n_shot':>6s} | {HEADLINE_HEAD} | classes improved"]
    for r in table.itertuples():
        lines.append(f"{r.n_shot:>6s} | {headline_cells(r)}")
    lines += [f"left out: {line}" for line in table.attrs.get("left_out", [])]
    return "\n".join(lines)


SUMMARY_RUN = "few-shot-summary"


def log_sweep_summary(tracking_uri: str, experiment: str, table: pd.DataFrame, files: list[str]) -> str:
    """Record the few-shot table (and its files, e.g. the plot) in a summary run of ``experiment``.

    The run carries ``apt_uss.kind=sweep-summary`` and no ``n_shot``, so tables built from
    the experiment never count it as a pipeline run. Metrics are ``<name>/<n_shot>``.
    """
    import mlflow
    from mlflow.entities import Metric

    client = mlflow.MlflowClient(tracking_uri)
    exp_id = _experiment_id(client, experiment, tracking_uri)
    run_id = client.create_run(exp_id, run_name=SUMMARY_RUN, tags={"apt_uss.kind": "sweep-summary"}).info.run_id
    metrics = [Metric(f"{col}/{row.n_shot}", float(getattr(row, col)), 0, 0) for row in table.itertuples()
               for col in ("baseline_pooled", "apt_pooled", "gain_pooled", "baseline_class_mean", "apt_class_mean",
                           "gain_class_mean")]
    client.log_batch(run_id, metrics=metrics)
    client.set_tag(run_id, "runs", ",".join(table["run_id"]))
    for f in files:
        client.log_artifact(run_id, f)
    client.set_terminated(run_id, "FINISHED")
    return run_id
