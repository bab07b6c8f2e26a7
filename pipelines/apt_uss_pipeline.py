"""The APT pipeline: fetch -> split -> simulate -> init prompts -> tune (GPU) -> evaluate x2 -> audio examples
-> report (tables, figures, HTML page, MLflow, S3).

The baseline (initial prompts) and APT (tuned prompts) evaluations are two tasks of one
component; the baseline's starts as soon as the initial prompts exist, beside the tuning.
"""


from kfp import dsl

from components.apt_uss_components import (
    audio_examples,
    evaluate_sdr,
    fetch_dataset,
    report_results,
    init_prompts,
    simulate_mixtures,
    split_folds,
    tune_prompts,
)

PIPELINE_NAME = "apt-uss"


@dsl.pipeline(name=PIPELINE_NAME, description="Audio prompt tuning for query-based universal sound separation")
def apt_uss_pipeline(
    n_shot: str = "5",
    seed: int = 0,
    epochs: int = 100,
    lr: float = 3e-4,
    batch_size: int = 4,
    tune: str = "prompts",
    precision: str = "fp32",
    checkpoint_uri: str = "",
    dataset: str = "synthetic",
    dataset_uri: str = "",
    dataset_sha256: str = "",
    n_classes: int = 10,
    train_folds: str = "1,2,3",
    test_folds: str = "4,5",
    crop_seconds: float = 2.0,
    mix_rule: str = "energy_match",
    backbone: str = "demo",
    sed_checkpoint_uri: str = "",
    separator_checkpoint_uri: str = "",
    backbone_seed: int = 0,
    device: str = "auto",
    tracking_uri: str = "",
    experiment: str = "apt-uss",
    artifact_uri: str = "s3://apt-uss/runs",
    audio_examples_per_class: int = 2,
) -> dsl.Dataset:
    fetched = fetch_dataset(dataset=dataset, dataset_uri=dataset_uri, dataset_sha256=dataset_sha256,
                            n_classes=n_classes, seed=seed)
    fetched.set_display_name("dataset fetch")
    split = split_folds(dataset_dir=fetched.output, n_shot=n_shot, seed=seed, train_folds=train_folds,
                        test_folds=test_folds)
    split.set_display_name("fold split")
    mixed = simulate_mixtures(dataset_dir=fetched.output, splits=split.output, seed=seed, epochs=epochs,
                              crop_seconds=crop_seconds, mix_rule=mix_rule)
    mixed.set_display_name("mixture simulation")
    model_args = dict(backbone=backbone, sed_checkpoint_uri=sed_checkpoint_uri,
                      separator_checkpoint_uri=separator_checkpoint_uri, backbone_seed=backbone_seed,
                      device=device)
    initial = init_prompts(dataset_dir=fetched.output, splits=split.output, **model_args)
    initial.set_display_name("embedding initialization")
    tuned = tune_prompts(dataset_dir=fetched.output, mixtures=mixed.output,
                         initial_prompts=initial.outputs["prompts"], lr=lr, batch_size=batch_size, tune=tune,
                         precision=precision, checkpoint_uri=checkpoint_uri,
                         run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER, tracking_uri=tracking_uri,
                         experiment=experiment, artifact_uri=artifact_uri, **model_args)
    tuned.set_display_name("prompt tuning (GPU)")
    tuned.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(1)
    # Logs live to MLflow and resumes from its per-epoch state: a cached copy would do neither.
    tuned.set_caching_options(False)
    # A pre-empted GPU node or a lost pod: the retry resumes after the last saved epoch.
    tuned.set_retry(num_retries=2, backoff_duration="60s", backoff_factor=2.0)
    eval_args = dict(dataset_dir=fetched.output, mixtures=mixed.output, **model_args)
    baseline = evaluate_sdr(prompts=initial.outputs["prompts"], system="baseline", **eval_args)
    baseline.set_display_name("SDR evaluation: baseline")
    apt = evaluate_sdr(prompts=tuned.outputs["tuned_prompts"], system="apt",
                       separator_weights=tuned.outputs["separator_weights"], **eval_args)
    apt.set_display_name("SDR evaluation: APT")
    examples = audio_examples(initial_prompts=initial.outputs["prompts"], tuned_prompts=tuned.outputs["tuned_prompts"],
                              baseline=baseline.outputs["evaluation"], apt=apt.outputs["evaluation"],
                              per_class=audio_examples_per_class,
                              separator_weights=tuned.outputs["separator_weights"], **eval_args)
    examples.set_display_name("audio examples")
    reported = report_results(
        baseline=baseline.outputs["evaluation"], apt=apt.outputs["evaluation"],
        initial_prompts=initial.outputs["prompts"], tuned_prompts=tuned.outputs["tuned_prompts"],
        loss=tuned.outputs["loss"], embeddings=initial.outputs["embeddings"],
        examples=examples.outputs["examples"],
        run_params={"n_shot": n_shot, "seed": seed, "epochs": epochs, "lr": lr, "batch_size": batch_size,
                    "tune": tune, "precision": precision, "dataset": dataset, "dataset_uri": dataset_uri,
                    "dataset_sha256": dataset_sha256, "n_classes": n_classes, "train_folds": train_folds,
                    "test_folds": test_folds, "crop_seconds": crop_seconds, "mix_rule": mix_rule,
                    "backbone": backbone, "backbone_seed": backbone_seed, "sed_checkpoint_uri": sed_checkpoint_uri,
                    "separator_checkpoint_uri": separator_checkpoint_uri, "device": device,
                    "audio_examples_per_class": audio_examples_per_class},
        run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER, tracking_uri=tracking_uri, experiment=experiment,
        artifact_uri=artifact_uri,
    )
    reported.set_display_name("report: MLflow and S3")
    # Side effects (MLflow run, S3 upload) must happen on every run, never be skipped by the cache.
    reported.set_caching_options(False)
    return reported.outputs["report"]
