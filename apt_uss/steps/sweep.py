"""The sweep's steps: Table 2 (every n_shot over several seeds) in one pipeline run.

The dataset is fetched once and every training-fold clip embedded once; each (n_shot, seed) cell
takes its prompts as the mean of its nested few-shot subset of those embeddings, tunes and is
evaluated as a single run would be (``apt_uss.steps.pipeline``), and one step gathers the cells
into the table, the tests, the figure, the page and the MLflow parent run with a child per cell.
"""

from __future__ import annotations

import json
import logging
import shutil

import pandas as pd

from apt_uss.data.audio import SAMPLE_RATE
from apt_uss.data.clips import read_clip
from apt_uss.data.dataset import is_musdb, load_metadata
from apt_uss.data.folds import split_folds
from apt_uss.errors import AptUssError
from apt_uss.io import storage, tracking
from apt_uss.io.atomic import atomic_path
from apt_uss.io.provenance import code_provenance
from apt_uss.io.tables import read_table
from apt_uss.method.prompts import (
    embed_clips,
    load_clip_embeddings,
    load_prompt_backbone,
    load_prompt_provenance,
    load_prompts,
    prompts_from_embeddings,
    save_embeddings,
    save_prompts,
)
from apt_uss.models.backbone import BackboneSpec
from apt_uss.models.device import resolve_device, use_available_cores
from apt_uss.params.checks import parse_folds, parse_seeds, parse_sweep_shots
from apt_uss.results import plots
from apt_uss.results.compare import PROVENANCE_PREFIX
from apt_uss.results.html_report import render_sweep_report
from apt_uss.results.statistics import BOOTSTRAP_RESAMPLES
from apt_uss.results.sweep_report import (
    CELL_FILE,
    TABLE_METRICS,
    cells_table,
    check_targets,
    few_shot_table,
    format_table,
    gain_tests,
    read_cells,
    score_rows,
)
from apt_uss.steps.data import SPLITS_COLUMNS
from apt_uss.steps.pipeline import DEMO, LOSS_COLUMNS, _run_provenance, say_requested_gpus, score_systems

log = logging.getLogger(__name__)

SWEEP_KIND, CELL_KIND = "sweep", "sweep-cell"
KIND_TAG = "apt_uss.kind"


def cell_name(n_shot: str, seed: int) -> str:
    """``5shot-seed1``, ``full-seed2``."""
    return f"{n_shot}-seed{seed}" if n_shot == "full" else f"{n_shot}shot-seed{seed}"


def cell_run_name(run_name: str, label: str) -> str:
    """A cell's MLflow run (and tuning state) name: the sweep's run name and the cell's label."""
    return f"{run_name}-{label}" if run_name else label


def plan_sweep_step(sweep_shots: str = DEMO["sweep_shots"], seeds: str = DEMO["seeds"], run_name: str = "",
                    tracking_uri: str = "", experiment: str = DEMO["experiment"], kfp_run_id: str = "") -> list[dict]:
    """The sweep's cells: every n_shot with every seed, as ``{"n_shot", "seed", "label", "run_name"}`` (not
    ``name``: a KFP loop item's ``.name`` is the channel's own). With ``kfp_run_id``, first checks that no other
    Kubeflow run holds ``run_name`` in the experiment (the aggregate would refuse it after every cell's tuning)."""
    if kfp_run_id:
        tracking.check_run_name_free(tracking.resolve_tracking_uri(tracking_uri), experiment, run_name, kfp_run_id)
    cells = []
    for shot in parse_sweep_shots(sweep_shots):
        for seed in parse_seeds(seeds):
            label = cell_name(shot, seed)
            cells.append({"n_shot": shot, "seed": seed, "label": label, "run_name": cell_run_name(run_name, label)})
    log.info("sweep: %d cells (%s)", len(cells), ", ".join(c["label"] for c in cells))
    return cells


def embed_training_clips_step(dataset_dir: str, out_embeddings: str,
                              backbone: BackboneSpec | dict | str = DEMO["backbone"],
                              train_folds=DEMO["train_folds"], test_folds=DEMO["test_folds"],
                              requested_gpus: int | str = 0) -> int:
    """Embed every clip of the training folds once (silent ones left out, as the split leaves them out); each
    cell's prompts are then the mean of its own subset. Returns the number of clips. ``requested_gpus``: what the
    pod asked for (``model_gpus``), said in the log beside what it sees."""
    meta = load_metadata(dataset_dir)
    if is_musdb(meta):
        raise AptUssError("the sweep is for ESC-50-layout datasets (synthetic, debian_sounds, esc50): "
                          "run MUSDB18 with "
                          "make pipeline-run")
    # Every training clip: the full-data split without a validation split (seed and shots do not matter then).
    train = split_folds(meta, None, 0, parse_folds(train_folds, "train_folds"), parse_folds(test_folds, "test_folds"))
    train = train[train["split"] == "train"]
    spec = BackboneSpec.of(backbone)
    use_available_cores()
    dev = resolve_device(spec.device)
    say_requested_gpus(requested_gpus, dev)
    model = spec.load().to(dev)
    clips = ((name, read_clip(dataset_dir, name)) for name in train["filename"])
    embeddings = embed_clips(model.sed, clips, len(train), SAMPLE_RATE, dev)
    save_embeddings(out_embeddings, embeddings, train, provenance=_run_provenance(model, dataset_dir),
                    backbone=spec.record())
    log.info("sweep: embedded %d training clips of %d classes once", len(train), train["target"].nunique())
    return len(train)


def prompts_from_embeddings_step(embeddings_path: str, splits_path: str, out_prompts: str):
    """A cell's initial prompts: the mean embedding of its training clips (equal to ``init_prompts_step``
    on the same split, without running the model again)."""
    splits = read_table(splits_path, "the splits table", SPLITS_COLUMNS)
    train = splits[splits["split"] == "train"]
    prompts, targets, names = prompts_from_embeddings(train, load_clip_embeddings(embeddings_path),
                                                      source=embeddings_path)
    save_prompts(out_prompts, prompts, targets, names, provenance=load_prompt_provenance(embeddings_path),
                 backbone=load_prompt_backbone(embeddings_path))
    log.info("initial prompts: %d classes x %d dims from %d embedded clips", *prompts.shape, len(train))
    return prompts


def score_cell_step(baseline_dir: str, apt_dir: str, tuned_prompts_path: str, loss_path: str, out_cell: str,
                    n_shot: str, seed: int) -> dict:
    """One cell's scores (per mixture, per class, summary), its tuned prompts, loss and provenance in one folder."""
    per_mixture, per_class, summary = score_systems(baseline_dir, apt_dir)
    # Both are copied into the cell, which aggregate-sweep reads: checked here.
    read_table(loss_path, "the tuning loss table", LOSS_COLUMNS, keep_default_na=True)
    load_prompts(tuned_prompts_path)
    info = {"n_shot": str(n_shot), "seed": int(seed), "name": cell_name(str(n_shot), int(seed)),
            "provenance": {**load_prompt_provenance(tuned_prompts_path), **code_provenance()}}
    with atomic_path(out_cell) as tmp:
        tmp.mkdir()
        per_mixture.to_csv(tmp / "per_mixture.csv", index=False)
        per_class.to_csv(tmp / "per_class.csv", index=False)
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2))
        (tmp / CELL_FILE).write_text(json.dumps(info, indent=2))
        shutil.copyfile(tuned_prompts_path, tmp / "prompts_tuned.npz")
        shutil.copyfile(loss_path, tmp / "tune_loss.csv")
    log.info("cell %s: pooled median SDR baseline %.2f, APT %.2f dB (%d mixtures)", info["name"],
             summary["sdr_baseline_pooled_median"], summary["sdr_apt_pooled_median"], summary["n_mixtures"])
    return summary


def _parent_metrics(table: pd.DataFrame, tests: pd.DataFrame) -> dict[str, float]:
    """``<statistic>/<n_shot>`` for the parent run (MLflow charts group them by statistic)."""
    out = {}
    for row in table.to_dict("records"):
        for metric in TABLE_METRICS:
            for part in ("mean", "low", "high"):
                value = row.get(f"{metric}_{part}")
                if value is not None and pd.notna(value):
                    out[f"{metric}_{part}/{row['n_shot']}"] = float(value)
    for row in tests.to_dict("records"):
        for name in ("gain_pooled_median_low", "gain_pooled_median_high", "gain_mean", "gain_mean_low",
                     "gain_mean_high", "wilcoxon_p", "classes_improved", "classes_worse"):
            if pd.notna(row[name]):
                out[f"bootstrap_{name}/{row['n_shot']}" if name.startswith("gain") else f"{name}/{row['n_shot']}"] = \
                    float(row[name])
    return out


def aggregate_sweep_step(cell_dirs: list[str], out_dir: str, run_params: dict | None = None,
                         run_name: str = "apt-uss-sweep", tracking_uri: str = "",
                         experiment: str = DEMO["experiment"], artifact_uri: str = "", out_html: str = "",
                         resamples: int = BOOTSTRAP_RESAMPLES, kfp_run_id: str = "") -> dict:
    """Table 2 from the cells: the CSVs, the text table, the few-shot curve with bands, one HTML page, an MLflow
    parent run ``run_name`` with a nested child run per cell (the cell's tuning run, now with its results),
    and the files on S3 (``artifact_uri``; empty skips the upload)."""
    cells = read_cells(cell_dirs)
    # Every cell's loss table is read before MLflow: a bad one must not leave the runs of the cells before it.
    losses = {cell.name: read_table(cell.folder / "tune_loss.csv", f"cell {cell.name}'s tuning loss table",
                                    LOSS_COLUMNS, keep_default_na=True) for cell in cells}
    uri = tracking.resolve_tracking_uri(tracking_uri)
    tracking.check_tracking(uri)
    if artifact_uri:
        storage.ensure_bucket(artifact_uri)
    table, tests = few_shot_table(cells), gain_tests(cells, int(resamples))
    targets = check_targets(table, tests)
    provenance = cells[0].provenance  # the same in every cell (read_cells): weights, data, code
    params = tracking.recorded_values(run_params or {})
    kfp = tracking.kfp_tag(kfp_run_id)
    parent_id = tracking.open_run(uri, experiment, run_name, tags={KIND_TAG: SWEEP_KIND, **kfp})
    # A retried aggregate finds the children an earlier attempt finished under the same parent, and keeps them.
    finished = tracking.finished_children(uri, experiment, parent_id)
    child_ids = {}
    for cell in cells:
        if cell_run_name(run_name, cell.name) in finished:
            child_ids[cell.name] = finished[cell_run_name(run_name, cell.name)]
            continue
        child_params = {**{k: v for k, v in params.items() if k not in ("sweep_shots", "seeds")},
                        "n_shot": cell.n_shot, "shot_seed": cell.seed, "mix_seed": cell.seed,
                        "audio_examples_per_class": 0,
                        **{f"{PROVENANCE_PREFIX}{k}": v for k, v in provenance.items()}}
        child_ids[cell.name] = tracking.log_run(
            uri, experiment, cell_run_name(run_name, cell.name), child_params,
            {**cell.summary, **tracking.per_class_metrics(cell.per_class)}, loss_history=losses[cell.name],
            artifacts_dir=cell.folder, tags={tracking.PARENT_TAG: parent_id, KIND_TAG: CELL_KIND,
                                              "n_shot": cell.n_shot, "sweep": run_name})
    per_cell = cells_table(cells, child_ids)
    text = format_table(table, tests)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        table.to_csv(tmp / "table2.csv", index=False)
        tests.to_csv(tmp / "gain_tests.csv", index=False)
        per_cell.to_csv(tmp / "cells.csv", index=False)
        (tmp / "targets.json").write_text(json.dumps(targets, indent=2))
        (tmp / "table2.txt").write_text(text + "\n")
        figure = plots.plot_few_shot_bands(table, tmp / "few_shot.png")
        page = tmp / "report.html"
        page.write_text(render_sweep_report(table, tests, targets, per_cell, figure, f"APT few-shot sweep: {run_name}",
                                            params, provenance, score_rows(table)), encoding="utf-8")
        if out_html:
            shutil.copyfile(page, out_html)
        files = {p.relative_to(tmp).as_posix(): p for p in sorted(tmp.rglob("*")) if p.is_file()}
        s3_uris = storage.upload_run_files(artifact_uri, run_name, files) if artifact_uri else {}
        parent_params = {**params, **{f"{PROVENANCE_PREFIX}{k}": v for k, v in provenance.items()}}
        tags = {KIND_TAG: SWEEP_KIND, "cells": str(len(cells)), **kfp}
        if s3_uris:
            tags["s3_artifacts"] = s3_uris["table2.csv"].rsplit("/", 1)[0] + "/"
        tracking.log_run(uri, experiment, run_name, parent_params, _parent_metrics(table, tests), artifacts_dir=tmp,
                         tags=tags)
        record = {"mlflow_run_id": parent_id, "mlflow_child_run_ids": child_ids,
                  "mlflow_tracking_uri": tracking.redact(uri), "experiment": experiment, "run_name": run_name,
                  "s3_prefix": tags.get("s3_artifacts", ""), "provenance": provenance}
        (tmp / "run.json").write_text(json.dumps(record, indent=2))
    log.info("sweep: %d cells, %d n_shot settings; MLflow parent run %s", len(cells), len(table), parent_id)
    return {"table": table, "tests": tests, "targets": targets, "text": text, "run": record}
