"""Thin KFP adapters of the sweep's own steps (``apt_uss.steps.sweep``); its cells reuse the run's components."""

import os
from typing import List, NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Metrics, Model, Output

CPU_IMAGE = os.environ.get("APT_USS_IMAGE", "apt-uss:0.1.0")
GPU_IMAGE = os.environ.get("APT_USS_GPU_IMAGE", "apt-uss-gpu:0.1.0")  # as components/apt_uss_components.py


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def validate_sweep_parameters(params: dict):
    """Fails the run, with one error line in its log, on any value one of the sweep's cells cannot use."""
    import logging

    from apt_uss.errors import AptUssError
    from apt_uss.logs import configure_logging
    from apt_uss.steps.validation import validate_parameters_step

    configure_logging()
    try:
        validate_parameters_step(params=params, pipeline="sweep")
    except AptUssError as exc:
        logging.getLogger("apt_uss.steps.sweep").error("error: %s", exc)
        raise


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def plan_sweep(sweep_shots: str, seeds: str, run_name: str, tracking_uri: str, experiment: str,
               kfp_run_id: str) -> List[dict]:
    """The cells; first refuses a run name another Kubeflow run holds in the experiment (see aggregate_sweep)."""
    from apt_uss.logs import configure_logging
    from apt_uss.steps.sweep import plan_sweep_step

    configure_logging()
    return plan_sweep_step(sweep_shots=sweep_shots, seeds=seeds, run_name=run_name, tracking_uri=tracking_uri,
                           experiment=experiment, kfp_run_id=kfp_run_id)


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def embed_training_clips(dataset_dir: Input[Dataset], backbone: dict, train_folds: str, test_folds: str,
                         embeddings: Output[Dataset], gpus: str = "0"):
    """``gpus``: what the pod asked for (logged beside what it sees)."""
    from apt_uss.logs import configure_logging
    from apt_uss.steps.sweep import embed_training_clips_step

    configure_logging()
    count = embed_training_clips_step(dataset_dir=dataset_dir.path, out_embeddings=embeddings.path, backbone=backbone,
                                      train_folds=train_folds, test_folds=test_folds, requested_gpus=gpus)
    embeddings.metadata["clips"] = count


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def prompts_from_embeddings(embeddings: Input[Dataset], splits: Input[Dataset], prompts: Output[Model]):
    from apt_uss.logs import configure_logging
    from apt_uss.steps.sweep import prompts_from_embeddings_step

    configure_logging()
    table = prompts_from_embeddings_step(embeddings_path=embeddings.path, splits_path=splits.path,
                                         out_prompts=prompts.path)
    prompts.metadata.update({"classes": int(table.shape[0]), "dims": int(table.shape[1])})


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def score_cell(baseline: Input[Dataset], apt: Input[Dataset], tuned_prompts: Input[Model], loss: Input[Dataset],
               n_shot: str, seed: int, cell: Output[Dataset]):
    from apt_uss.logs import configure_logging
    from apt_uss.steps.sweep import score_cell_step

    configure_logging()
    summary = score_cell_step(baseline_dir=baseline.path, apt_dir=apt.path, tuned_prompts_path=tuned_prompts.path,
                              loss_path=loss.path, out_cell=cell.path, n_shot=n_shot, seed=seed)
    cell.metadata.update({"n_shot": n_shot, "seed": seed, "sdr_gain_pooled_median": summary["sdr_gain_pooled_median"]})


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def aggregate_sweep(cells: Input[List[Dataset]], run_params: dict, run_name: str, tracking_uri: str,
                    experiment: str, artifact_uri: str, sweep: Output[Dataset], metrics: Output[Metrics],
                    html_report: Output[HTML], kfp_run_id: str = "") -> NamedTuple("SweepOutputs",
                                                                                   [("mlflow_run_id", str)]):
    from collections import namedtuple

    from apt_uss.logs import configure_logging
    from apt_uss.steps.sweep import aggregate_sweep_step

    configure_logging()
    result = aggregate_sweep_step(cell_dirs=[c.path for c in cells], out_dir=sweep.path, run_params=run_params,
                                  run_name=run_name, tracking_uri=tracking_uri, experiment=experiment,
                                  artifact_uri=artifact_uri, out_html=html_report.path, kfp_run_id=kfp_run_id)
    for row in result["table"].to_dict("records"):
        metrics.log_metric(f"sdr_gain_pooled_median_mean_{row['n_shot']}", row["sdr_gain_pooled_median_mean"])
    return namedtuple("SweepOutputs", ["mlflow_run_id"])(result["run"]["mlflow_run_id"])
