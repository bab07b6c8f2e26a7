"""The APT pipeline: parameter check -> fetch -> split -> simulate -> init prompts -> tune (GPU) -> evaluate x2 -> audio examples
-> report (tables, figures, HTML page, MLflow, S3).

The baseline (initial prompts) and APT (tuned prompts) evaluations are two tasks of one
component; the baseline's starts as soon as the initial prompts exist, beside the tuning.
"""

import inspect

from kfp import dsl, kubernetes

from apt_uss.params import spec
from apt_uss.tools.cluster import CONFIG_KEYS, RESOURCES, SECRET_KEYS
from components.apt_uss_components import (
    audio_examples,
    evaluate_sdr,
    fetch_dataset,
    init_prompts,
    report_results,
    simulate_mixtures,
    split_folds,
    tune_prompts,
    validate_parameters,
)

PIPELINE_NAME = "apt-uss"


# How often a step that touches the network (or holds a GPU that may be pre-empted) is retried on a cluster.
NETWORK_RETRIES = 2


def cluster_settings(p: dict, retries: bool = True) -> dict:
    """What every task's cluster settings take: the Secret and ConfigMap the pods read, and how often a step that
    touches the network is retried. ``retries=False`` for the local runners: KFP's local runner honours the retry
    policy, so a bad ``dataset_uri`` would wait out 90 s of backoff before its one error line."""
    return dict(credentials_secret=p["credentials_secret"], config_map=p["config_map"],
                network_retries=NETWORK_RETRIES if retries else 0)


def _for_cluster(task, kind: str, credentials_secret, config_map, network_retries: int, retried: bool = True):
    """Requests and limits, the S3 keys (Secret) and endpoints (ConfigMap) as environment
    variables, and, where ``retried``, ``network_retries`` retries with backoff (steps that touch the
    network or hold a GPU). Requests, limits, Secret and ConfigMap apply on a cluster only: the local runners
    ignore them."""
    cpu, memory, memory_limit = RESOURCES[kind]
    task.set_cpu_request(cpu).set_memory_request(memory).set_memory_limit(memory_limit)
    # Optional: a run without S3 (artifact_uri empty) or with tracking_uri given needs neither.
    kubernetes.use_secret_as_env(task, secret_name=credentials_secret,
                                 secret_key_to_env={k: k for k in SECRET_KEYS}, optional=True)
    kubernetes.use_config_map_as_env(task, config_map_name=config_map,
                                     config_map_key_to_env={k: k for k in CONFIG_KEYS}, optional=True)
    if retried and network_retries:
        task.set_retry(num_retries=network_retries, backoff_duration="30s", backoff_factor=2.0,
                       backoff_max_duration="600s")
    return task


def on_model_gpus(task, p: dict):
    """A step that runs the backbone over many clips: on a cluster its pod asks for ``model_gpus`` GPUs (the paper
    profile: 1; the demo: 0, a CPU pod) and tolerates the GPU nodes' taint. No node selector: a pod that asks for
    no GPU may still run on any node."""
    task.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(p["model_gpus"])
    kubernetes.add_toleration_json(task, p["gpu_tolerations"])
    return task


def _apt_uss_dag(p: dict, retries: bool = True) -> dsl.Dataset:
    """The DAG over the pipeline's parameters ``p`` (name -> the run's value; KFP channels at compile time).

    On a cluster the tuning pod asks for ``tune_gpus`` of ``nvidia.com/gpu``, tolerates
    ``gpu_tolerations`` and, when ``gpu_node_selector`` is non-empty, runs on matching nodes;
    ``credentials_secret`` and ``config_map`` name the Secret (S3 keys) and ConfigMap (S3
    endpoint, region, MLflow URI) that every pod reads (charts/apt-uss creates both). ``retries=False`` builds it
    for the local runners (``cluster_settings``)."""
    cluster = cluster_settings(p, retries)
    run_params = {name: p[name] for name in spec.RESULT_PARAMETERS}  # what the report and MLflow record
    backbone = {name: p[name] for name in spec.BACKBONE_PARAMETERS}  # one parameter for every step that runs the model
    # First, so a run started or edited in the Kubeflow UI is checked before data moves or a GPU is asked for.
    validated = validate_parameters(params={name: p[name] for name in spec.CHECKED_PARAMETERS})
    validated.set_display_name("parameter check")
    _for_cluster(validated, "light", retried=False, **cluster)
    fetched = dataset_task(p, validated, cluster)
    split = split_folds(dataset_dir=fetched.output, n_shot=p["n_shot"], seed=p["seed"], shot_seed=p["shot_seed"],
                        train_folds=p["train_folds"], validation_clips=p["validation_clips"],
                        test_folds=p["test_folds"])
    split.set_display_name("fold split")
    _for_cluster(split, "light", retried=False, **cluster)
    mixed = simulate_mixtures(dataset_dir=fetched.output, splits=split.output, seed=p["seed"], mix_seed=p["mix_seed"],
                              epochs=p["epochs"],
                              crop_seconds=p["crop_seconds"], mix_rule=p["mix_rule"], crop_rule=p["crop_rule"])
    mixed.set_display_name("mixture simulation")
    _for_cluster(mixed, "light", retried=False, **cluster)
    initial = init_prompts(dataset_dir=fetched.output, splits=split.output, backbone=backbone, gpus=p["model_gpus"])
    initial.set_display_name("embedding initialization")
    _for_cluster(initial, "model", **cluster)  # checkpoint URIs may be https:// or s3://
    on_model_gpus(initial, p)
    tuned = tuning_task(p, fetched.output, mixed.output, initial.outputs["prompts"], backbone, cluster)
    eval_args = dict(dataset_dir=fetched.output, mixtures=mixed.output, backbone=backbone)
    baseline, apt = evaluation_tasks(p, initial.outputs["prompts"], tuned, eval_args, cluster)
    examples = audio_examples(initial_prompts=initial.outputs["prompts"], tuned_prompts=tuned.outputs["tuned_prompts"],
                              baseline=baseline.outputs["evaluation"], apt=apt.outputs["evaluation"],
                              per_class=p["audio_examples_per_class"], gpus=p["model_gpus"],
                              separator_weights=tuned.outputs["separator_weights"], **eval_args)
    examples.set_display_name("audio examples")
    _for_cluster(examples, "model", **cluster)
    on_model_gpus(examples, p)
    reported = report_results(
        baseline=baseline.outputs["evaluation"], apt=apt.outputs["evaluation"],
        initial_prompts=initial.outputs["prompts"], tuned_prompts=tuned.outputs["tuned_prompts"],
        loss=tuned.outputs["loss"], embeddings=initial.outputs["embeddings"],
        examples=examples.outputs["examples"],
        run_params=run_params,
        run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER, tracking_uri=p["tracking_uri"], experiment=p["experiment"],
        artifact_uri=p["artifact_uri"], model_name=p["model_name"], kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
    )
    reported.set_display_name("report: MLflow, S3 and the registered model")
    _for_cluster(reported, "light", **cluster)
    # Side effects (MLflow run, S3 upload) must happen on every run, never be skipped by the cache.
    reported.set_caching_options(False)
    return reported.outputs["report"]


def dataset_task(p: dict, validated, cluster: dict, display_name: str = "dataset fetch"):
    """The dataset fetch, after the parameter check (no data moves for a run that would fail it)."""
    fetched = fetch_dataset(dataset=p["dataset"], dataset_uri=p["dataset_uri"], dataset_sha256=p["dataset_sha256"],
                            n_classes=p["n_classes"], seed=p["seed"])
    fetched.set_display_name(display_name)
    fetched.after(validated)
    _for_cluster(fetched, "light", **cluster)
    return fetched


def tuning_task(p: dict, dataset, mixtures, prompts, backbone: dict, cluster: dict,
                run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER, nested_run: bool = False):
    """The tuning task on a GPU pod; ``run_name`` keys its MLflow run and per-epoch state (a sweep cell has its
    own, ``nested_run``)."""
    tuned = tune_prompts(dataset_dir=dataset, mixtures=mixtures, initial_prompts=prompts, backbone=backbone,
                         lr=p["lr"], lr_schedule=p["lr_schedule"], loss_function=p["loss_function"],
                         batch_size=p["batch_size"], tune=p["tune"], precision=p["precision"],
                         checkpoint_uri=p["checkpoint_uri"], keep_best_epoch=p["keep_best_epoch"],
                         run_name=run_name, tracking_uri=p["tracking_uri"],
                         experiment=p["experiment"], artifact_uri=p["artifact_uri"],
                         # Also an input, not only the pod's GPU limit: inside a ParallelFor the compiler surfaces a
                         # pipeline parameter to the loop only when a task takes it as an input.
                         gpus=p["tune_gpus"], nested_run=nested_run, kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER)
    tuned.set_display_name("prompt tuning (GPU)")
    # A pre-empted GPU node or a lost pod: the retry resumes after the last saved epoch.
    _for_cluster(tuned, "tune", **cluster)
    tuned.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(p["tune_gpus"])
    kubernetes.add_toleration_json(tuned, p["gpu_tolerations"])
    kubernetes.add_node_selector_json(tuned, p["gpu_node_selector"])
    # Logs live to MLflow and resumes from its per-epoch state: a cached copy would do neither.
    tuned.set_caching_options(False)
    return tuned


def evaluation_tasks(p: dict, initial_prompts, tuned, eval_args: dict, cluster: dict):
    """The baseline (initial prompts) and APT (tuned prompts) evaluations: two tasks of one component, on
    ``model_gpus`` GPUs each. ``gpus`` is also an input (as the tuning task's): inside a ParallelFor the compiler
    surfaces a pipeline parameter to the loop only when a task takes it as an input."""
    baseline = evaluate_sdr(prompts=initial_prompts, system="baseline", gpus=p["model_gpus"], **eval_args)
    baseline.set_display_name("SDR evaluation: baseline")
    _for_cluster(baseline, "model", **cluster)
    apt = evaluate_sdr(prompts=tuned.outputs["tuned_prompts"], system="apt", gpus=p["model_gpus"],
                       separator_weights=tuned.outputs["separator_weights"], **eval_args)
    apt.set_display_name("SDR evaluation: APT")
    _for_cluster(apt, "model", **cluster)
    for task in (baseline, apt):
        on_model_gpus(task, p)
    return baseline, apt


def signature_of(parameters, profile: str, return_annotation) -> inspect.Signature:
    """A pipeline function's signature: one parameter per spec entry, defaulting to ``profile``'s values."""
    defaults = spec.defaults(profile)
    return inspect.Signature(
        [inspect.Parameter(q.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=defaults[q.name], annotation=q.type)
         for q in parameters], return_annotation=return_annotation)


def docstring_of(parameters, summary: str) -> str:
    return summary + "\n\nArgs:\n" + "".join(f"    {q.name}: {q.help.replace('`', '')}\n" for q in parameters)


def build_pipeline(profile: str = spec.DEFAULT_PROFILE, retries: bool = True):
    """The pipeline with one parameter per spec entry (``apt_uss.params.spec``), defaulting to ``profile``'s values;
    ``retries=False`` leaves out the network steps' retries (for the local runners).

    KFP reads a pipeline's parameters from its function's signature and their descriptions from its
    docstring; both are made here from the spec, so a Kubeflow UI run shows and can change each one.
    """
    names = [q.name for q in spec.PARAMETERS]

    def apt_uss_pipeline(*values) -> dsl.Dataset:
        return _apt_uss_dag(dict(zip(names, values)), retries)

    apt_uss_pipeline.__signature__ = signature_of(spec.PARAMETERS, profile, dsl.Dataset)
    apt_uss_pipeline.__doc__ = docstring_of(
        spec.PARAMETERS, f"Audio prompt tuning for query-based universal sound separation ({profile} profile).")
    return dsl.pipeline(name=PIPELINE_NAME, description="Audio prompt tuning for query-based universal sound "
                        f"separation ({profile} profile)")(apt_uss_pipeline)


# What `make pipeline-compile` compiles: the demo profile's defaults, which the shipped weights need
# (make pipeline-compile PROFILE=paper compiles the paper's). The local runners build theirs without the retries.
apt_uss_pipeline = build_pipeline()
