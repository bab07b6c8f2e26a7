"""Thin KFP adapters: each reads its artifact paths, calls one ``apt_uss.steps`` function, writes its outputs.

The project is installed in the image (``install_kfp_package=False``, no
``packages_to_install``), so imports live inside each function body, where they run
in the step's container rather than at compile time.
"""


import os
from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Metrics, Model, Output

# Image names are compile-time settings, the same names the image build tags. The steps that run the backbone
# (initial prompts, tuning, both evaluations, audio examples; the sweep's shared embedding) use the GPU image,
# whose CUDA build of torch also runs on a CPU pod: whether their pods get a GPU is a run parameter
# (tune_gpus, model_gpus), the image is fixed when the pipeline is compiled.
CPU_IMAGE = os.environ.get("APT_USS_IMAGE", "apt-uss:0.1.0")
GPU_IMAGE = os.environ.get("APT_USS_GPU_IMAGE", "apt-uss-gpu:0.1.0")


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def validate_parameters(params: dict):
    """Fails the run, with one error line in its log, on any value the pipeline cannot use."""
    import logging

    from apt_uss.errors import AptUssError
    from apt_uss.logs import configure_logging
    from apt_uss.steps.validation import validate_parameters_step

    configure_logging()
    try:
        validate_parameters_step(params=params)
    except AptUssError as exc:
        logging.getLogger("apt_uss.steps.pipeline").error("error: %s", exc)
        raise


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def fetch_dataset(dataset: str, dataset_uri: str, dataset_sha256: str, n_classes: int, seed: int,
                  dataset_dir: Output[Dataset]):
    from apt_uss.logs import configure_logging
    from apt_uss.steps.data import fetch_dataset_step

    configure_logging()
    manifest = fetch_dataset_step(dataset=dataset, out_dataset=dataset_dir.path, dataset_uri=dataset_uri,
                                  n_classes=n_classes, seed=seed, dataset_sha256=dataset_sha256)
    dataset_dir.metadata.update({k: manifest[k] for k in ("dataset", "source_uri", "sha256", "n_clips",
                                                          "n_classes", "n_silent")})


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def split_folds(dataset_dir: Input[Dataset], n_shot: str, seed: int, shot_seed: int, train_folds: str,
                test_folds: str, validation_clips: int, splits: Output[Dataset]):
    from apt_uss.logs import configure_logging
    from apt_uss.steps.data import split_folds_step

    configure_logging()
    table = split_folds_step(dataset_dir=dataset_dir.path, out_splits=splits.path, n_shot=n_shot, seed=seed,
                             shot_seed=shot_seed, train_folds=train_folds, test_folds=test_folds,
                             validation_clips=validation_clips)
    splits.metadata.update({k: int(v) for k, v in table.groupby("split").size().items()})


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def simulate_mixtures(dataset_dir: Input[Dataset], splits: Input[Dataset], seed: int, mix_seed: int, epochs: int,
                      crop_seconds: float, mix_rule: str, crop_rule: str, mixtures: Output[Dataset]):
    from apt_uss.logs import configure_logging
    from apt_uss.steps.data import simulate_mixtures_step

    configure_logging()
    info = simulate_mixtures_step(dataset_dir=dataset_dir.path, splits_path=splits.path, out_mixtures=mixtures.path,
                                  seed=seed, mix_seed=mix_seed, epochs=epochs, crop_seconds=crop_seconds,
                                  mix_rule=mix_rule,
                                  crop_rule=crop_rule)
    mixtures.metadata.update(info)


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def init_prompts(dataset_dir: Input[Dataset], splits: Input[Dataset], backbone: dict,
                 prompts: Output[Model], embeddings: Output[Dataset], gpus: str = "0"):
    """``backbone``: the run's backbone spec (apt_uss.models.backbone.BackboneSpec as a dict). ``gpus``: what the
    pod asked for (logged beside what it sees)."""
    from apt_uss.logs import configure_logging
    from apt_uss.steps.pipeline import init_prompts_step

    configure_logging()
    table = init_prompts_step(dataset_dir=dataset_dir.path, splits_path=splits.path, out_prompts=prompts.path,
                              out_embeddings=embeddings.path, backbone=backbone, requested_gpus=gpus)
    prompts.metadata.update({"classes": int(table.shape[0]), "dims": int(table.shape[1])})


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def tune_prompts(dataset_dir: Input[Dataset], mixtures: Input[Dataset], initial_prompts: Input[Model],
                 backbone: dict, lr: float, batch_size: int, tune: str, precision: str, checkpoint_uri: str,
                 run_name: str, tracking_uri: str, experiment: str, artifact_uri: str,
                 tuned_prompts: Output[Model], loss: Output[Dataset], separator_weights: Output[Model],
                 lr_schedule: str, loss_function: str, keep_best_epoch: bool, gpus: str = "0",
                 nested_run: bool = False, kfp_run_id: str = ""):
    """``separator_weights`` is the tuned separator for tune=joint and an empty file for tune=prompts.
    ``gpus``: what the pod asked for (logged beside what it sees). ``nested_run``: a sweep cell's MLflow run."""
    from apt_uss.logs import configure_logging
    from apt_uss.steps.pipeline import default_state_uri, tune_prompts_step

    configure_logging()
    state_uri = default_state_uri(artifact_uri, run_name, checkpoint_uri)
    _, history = tune_prompts_step(
        dataset_dir=dataset_dir.path, mixtures_dir=mixtures.path, prompts_path=initial_prompts.path,
        out_prompts=tuned_prompts.path, out_loss=loss.path, backbone=backbone, lr=lr, batch_size=batch_size, tune=tune, precision=precision, out_separator=separator_weights.path, state_uri=state_uri,
        run_name=run_name, tracking_uri=tracking_uri, experiment=experiment, lr_schedule=lr_schedule,
        loss_function=loss_function, keep_best_epoch=keep_best_epoch, requested_gpus=gpus, nested_run=nested_run,
        kfp_run_id=kfp_run_id)
    separator_weights.metadata["tuned"] = tune == "joint"
    if len(history):
        loss.metadata["final_loss"] = float(history["loss"].iloc[-1])


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def evaluate_sdr(dataset_dir: Input[Dataset], mixtures: Input[Dataset], prompts: Input[Model], system: str,
                 backbone: dict, evaluation: Output[Dataset], separator_weights: Input[Model] = None, gpus: str = "0"):
    from apt_uss.logs import configure_logging
    from apt_uss.steps.pipeline import evaluate_step

    configure_logging()
    table = evaluate_step(dataset_dir=dataset_dir.path, mixtures_dir=mixtures.path, prompts_path=prompts.path,
                          out_dir=evaluation.path, system=system, backbone=backbone,
                          separator_weights=separator_weights.path if separator_weights is not None else "",
                          requested_gpus=gpus)
    evaluation.metadata.update({"system": system, "n_scored": int(len(table))})
    if len(table):
        evaluation.metadata["sdr_pooled_median"] = float(table["sdr"].median())


@dsl.component(base_image=GPU_IMAGE, install_kfp_package=False)
def audio_examples(dataset_dir: Input[Dataset], mixtures: Input[Dataset], initial_prompts: Input[Model],
                   tuned_prompts: Input[Model], baseline: Input[Dataset], apt: Input[Dataset], per_class: int,
                   backbone: dict, examples: Output[Dataset], separator_weights: Input[Model] = None,
                   gpus: str = "0"):
    from apt_uss.logs import configure_logging
    from apt_uss.steps.pipeline import audio_examples_step

    configure_logging()
    table = audio_examples_step(
        dataset_dir=dataset_dir.path, mixtures_dir=mixtures.path, initial_prompts_path=initial_prompts.path,
        tuned_prompts_path=tuned_prompts.path, baseline_dir=baseline.path, apt_dir=apt.path, out_dir=examples.path,
        per_class=per_class, backbone=backbone,
        separator_weights=separator_weights.path if separator_weights is not None else "", requested_gpus=gpus)
    examples.metadata.update({"mixtures": int(len(table)), "per_class": int(per_class)})


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def report_results(baseline: Input[Dataset], apt: Input[Dataset], initial_prompts: Input[Model],
                   tuned_prompts: Input[Model], loss: Input[Dataset], embeddings: Input[Dataset],
                   examples: Input[Dataset], run_params: dict, run_name: str,
                   tracking_uri: str, experiment: str, artifact_uri: str, model_name: str,
                   report: Output[Dataset], metrics: Output[Metrics], html_report: Output[HTML],
                   kfp_run_id: str = "") -> NamedTuple(
                       "ReportOutputs", [("mlflow_run_id", str), ("s3_prefix", str)]):
    from collections import namedtuple

    from apt_uss.logs import configure_logging
    from apt_uss.steps.pipeline import report_step

    configure_logging()
    result = report_step(baseline_dir=baseline.path, apt_dir=apt.path, initial_prompts_path=initial_prompts.path,
                         tuned_prompts_path=tuned_prompts.path, loss_path=loss.path, out_report=report.path,
                         run_params=run_params, run_name=run_name, tracking_uri=tracking_uri, experiment=experiment,
                         artifact_uri=artifact_uri, embeddings_path=embeddings.path, examples_dir=examples.path,
                         out_html=html_report.path, model_name=model_name, kfp_run_id=kfp_run_id)
    for name, value in result["summary"].items():
        metrics.log_metric(name, value)
    outputs = namedtuple("ReportOutputs", ["mlflow_run_id", "s3_prefix"])
    return outputs(result["run"]["mlflow_run_id"], result["run"]["s3_prefix"])
