"""The APT pipeline: parameter check -> fetch -> split -> simulate -> init prompts -> tune (GPU) -> evaluate x2 -> audio examples
-> report (tables, figures, HTML page, MLflow, S3).

The baseline (initial prompts) and APT (tuned prompts) evaluations are two tasks of one
component; the baseline's starts as soon as the initial prompts exist, beside the tuning.
"""


from kfp import dsl, kubernetes

from apt_uss.cluster import CONFIG_KEYS, CONFIG_MAP, CREDENTIALS_SECRET, GPU_TOLERATIONS, RESOURCES, SECRET_KEYS

from components.apt_uss_components import (
    audio_examples,
    evaluate_sdr,
    fetch_dataset,
    report_results,
    init_prompts,
    simulate_mixtures,
    split_folds,
    tune_prompts,
    validate_parameters,
)

PIPELINE_NAME = "apt-uss"


def _for_cluster(task, kind: str, credentials_secret, config_map, retries: int = 2):
    """Requests and limits, the S3 keys (Secret) and endpoints (ConfigMap) as environment
    variables, and retries with backoff for steps that touch the network. On a cluster only:
    the local runners ignore them."""
    cpu, memory, memory_limit = RESOURCES[kind]
    task.set_cpu_request(cpu).set_memory_request(memory).set_memory_limit(memory_limit)
    # Optional: a run without S3 (artifact_uri empty) or with tracking_uri given needs neither.
    kubernetes.use_secret_as_env(task, secret_name=credentials_secret,
                                 secret_key_to_env={k: k for k in SECRET_KEYS}, optional=True)
    kubernetes.use_config_map_as_env(task, config_map_name=config_map,
                                     config_map_key_to_env={k: k for k in CONFIG_KEYS}, optional=True)
    if retries:
        task.set_retry(num_retries=retries, backoff_duration="30s", backoff_factor=2.0, backoff_max_duration="600s")
    return task


@dsl.pipeline(name=PIPELINE_NAME, description="Audio prompt tuning for query-based universal sound separation")
def apt_uss_pipeline(
    n_shot: str = "5",
    seed: int = 0,
    epochs: int = 100,
    lr: float = 3e-4,
    lr_schedule: str = "constant",
    loss_function: str = "l1",
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
    crop_rule: str = "random",
    backbone: str = "demo",
    sed_checkpoint_uri: str = "",
    separator_checkpoint_uri: str = "",
    backbone_seed: int = 0,
    device: str = "auto",
    tracking_uri: str = "",
    experiment: str = "apt-uss",
    artifact_uri: str = "s3://apt-uss/runs",
    audio_examples_per_class: int = 2,
    tune_gpus: int = 1,
    gpu_tolerations: list = GPU_TOLERATIONS,
    gpu_node_selector: dict = {},
    credentials_secret: str = CREDENTIALS_SECRET,
    config_map: str = CONFIG_MAP,
) -> dsl.Dataset:
    """On a cluster the tuning pod asks for ``tune_gpus`` of ``nvidia.com/gpu``, tolerates
    ``gpu_tolerations`` and, when ``gpu_node_selector`` is non-empty, runs on matching nodes;
    ``credentials_secret`` and ``config_map`` name the Secret (S3 keys) and ConfigMap (S3
    endpoint, region, MLflow URI) that every pod reads (charts/apt-uss creates both)."""
    cluster = dict(credentials_secret=credentials_secret, config_map=config_map)
    run_params = {"n_shot": n_shot, "seed": seed, "epochs": epochs, "lr": lr, "lr_schedule": lr_schedule,
                  "loss_function": loss_function, "batch_size": batch_size,
                  "tune": tune, "precision": precision, "dataset": dataset, "dataset_uri": dataset_uri,
                  "dataset_sha256": dataset_sha256, "n_classes": n_classes, "train_folds": train_folds,
                  "test_folds": test_folds, "crop_seconds": crop_seconds, "mix_rule": mix_rule,
                  "crop_rule": crop_rule, "backbone": backbone, "backbone_seed": backbone_seed,
                  "sed_checkpoint_uri": sed_checkpoint_uri,
                  "separator_checkpoint_uri": separator_checkpoint_uri, "device": device,
                  "audio_examples_per_class": audio_examples_per_class}
    # First, so a run started or edited in the Kubeflow UI is checked before data moves or a GPU is asked for.
    validated = validate_parameters(params={**run_params, "checkpoint_uri": checkpoint_uri, "tune_gpus": tune_gpus})
    validated.set_display_name("parameter check")
    _for_cluster(validated, "light", retries=0, **cluster)
    fetched = fetch_dataset(dataset=dataset, dataset_uri=dataset_uri, dataset_sha256=dataset_sha256,
                            n_classes=n_classes, seed=seed)
    fetched.set_display_name("dataset fetch")
    fetched.after(validated)
    _for_cluster(fetched, "light", **cluster)
    split = split_folds(dataset_dir=fetched.output, n_shot=n_shot, seed=seed, train_folds=train_folds,
                        test_folds=test_folds)
    split.set_display_name("fold split")
    _for_cluster(split, "light", retries=0, **cluster)
    mixed = simulate_mixtures(dataset_dir=fetched.output, splits=split.output, seed=seed, epochs=epochs,
                              crop_seconds=crop_seconds, mix_rule=mix_rule, crop_rule=crop_rule)
    mixed.set_display_name("mixture simulation")
    _for_cluster(mixed, "light", retries=0, **cluster)
    model_args = dict(backbone=backbone, sed_checkpoint_uri=sed_checkpoint_uri,
                      separator_checkpoint_uri=separator_checkpoint_uri, backbone_seed=backbone_seed,
                      device=device)
    initial = init_prompts(dataset_dir=fetched.output, splits=split.output, **model_args)
    initial.set_display_name("embedding initialization")
    _for_cluster(initial, "model", **cluster)  # checkpoint URIs may be https:// or s3://
    tuned = tune_prompts(dataset_dir=fetched.output, mixtures=mixed.output,
                         initial_prompts=initial.outputs["prompts"], lr=lr, lr_schedule=lr_schedule,
                         loss_function=loss_function, batch_size=batch_size, tune=tune,
                         precision=precision, checkpoint_uri=checkpoint_uri,
                         run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER, tracking_uri=tracking_uri,
                         experiment=experiment, artifact_uri=artifact_uri, **model_args)
    tuned.set_display_name("prompt tuning (GPU)")
    # A pre-empted GPU node or a lost pod: the retry resumes after the last saved epoch.
    _for_cluster(tuned, "tune", **cluster)
    tuned.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(tune_gpus)
    kubernetes.add_toleration_json(tuned, gpu_tolerations)
    kubernetes.add_node_selector_json(tuned, gpu_node_selector)
    # Logs live to MLflow and resumes from its per-epoch state: a cached copy would do neither.
    tuned.set_caching_options(False)
    eval_args = dict(dataset_dir=fetched.output, mixtures=mixed.output, **model_args)
    baseline = evaluate_sdr(prompts=initial.outputs["prompts"], system="baseline", **eval_args)
    baseline.set_display_name("SDR evaluation: baseline")
    _for_cluster(baseline, "model", **cluster)
    apt = evaluate_sdr(prompts=tuned.outputs["tuned_prompts"], system="apt",
                       separator_weights=tuned.outputs["separator_weights"], **eval_args)
    apt.set_display_name("SDR evaluation: APT")
    _for_cluster(apt, "model", **cluster)
    examples = audio_examples(initial_prompts=initial.outputs["prompts"], tuned_prompts=tuned.outputs["tuned_prompts"],
                              baseline=baseline.outputs["evaluation"], apt=apt.outputs["evaluation"],
                              per_class=audio_examples_per_class,
                              separator_weights=tuned.outputs["separator_weights"], **eval_args)
    examples.set_display_name("audio examples")
    _for_cluster(examples, "model", **cluster)
    reported = report_results(
        baseline=baseline.outputs["evaluation"], apt=apt.outputs["evaluation"],
        initial_prompts=initial.outputs["prompts"], tuned_prompts=tuned.outputs["tuned_prompts"],
        loss=tuned.outputs["loss"], embeddings=initial.outputs["embeddings"],
        examples=examples.outputs["examples"],
        run_params=run_params,
        run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER, tracking_uri=tracking_uri, experiment=experiment,
        artifact_uri=artifact_uri,
    )
    reported.set_display_name("report: MLflow and S3")
    _for_cluster(reported, "light", **cluster)
    # Side effects (MLflow run, S3 upload) must happen on every run, never be skipped by the cache.
    reported.set_caching_options(False)
    return reported.outputs["report"]
