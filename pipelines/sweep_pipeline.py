"""The sweep pipeline: the paper's Table 2 over several seeds in one KFP run.

parameter check -> dataset fetch (once) -> embed every training clip (once) -> for each (n_shot, seed) cell
in a ``dsl.ParallelFor``: fold split -> mixture simulation -> prompts as the mean of the cell's clips ->
tuning (GPU) -> evaluation x2 -> cell scores; then one aggregate step over the collected cells: Table 2
with intervals over seeds, the paired bootstrap and Wilcoxon tests, the few-shot curve, an HTML page,
an MLflow parent run with a child run per cell, and the files on S3.

A cell's seed is its ``shot_seed`` and ``mix_seed``; ``seed`` stays the dataset's, so every cell reads
the same data.
"""

from kfp import dsl

from apt_uss.params import spec
from components.apt_uss_components import simulate_mixtures, split_folds
from components.sweep_components import (
    aggregate_sweep,
    embed_training_clips,
    plan_sweep,
    prompts_from_embeddings,
    score_cell,
    validate_sweep_parameters,
)
from pipelines.apt_uss_pipeline import (
    _for_cluster,
    cluster_settings,
    dataset_task,
    docstring_of,
    evaluation_tasks,
    on_model_gpus,
    signature_of,
    tuning_task,
)

SWEEP_PIPELINE_NAME = "apt-uss-sweep"
# Cells run at once on a cluster (each holds a GPU while it tunes); the local runner sets its own.
DEFAULT_PARALLELISM = 4


def _sweep_dag(p: dict, parallelism: int, retries: bool = True) -> dsl.Dataset:
    cluster = cluster_settings(p, retries)
    backbone = {name: p[name] for name in spec.BACKBONE_PARAMETERS}
    validated = validate_sweep_parameters(params={name: p[name] for name in spec.SWEEP_CHECKED_PARAMETERS})
    validated.set_display_name("parameter check")
    _for_cluster(validated, "light", retried=False, **cluster)
    # The cells' MLflow run names are made here, outside the loop: inside it kfp.local names the job per iteration.
    planned = plan_sweep(sweep_shots=p["sweep_shots"], seeds=p["seeds"], run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
                         tracking_uri=p["tracking_uri"], experiment=p["experiment"],
                         kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER)
    planned.set_display_name("sweep cells")
    planned.after(validated)
    planned.set_caching_options(False)  # it checks the run's name in MLflow: a cached result would skip that
    _for_cluster(planned, "light", **cluster)  # retried: it reads MLflow
    fetched = dataset_task(p, validated, cluster, "dataset fetch (once)")
    embedded = embed_training_clips(dataset_dir=fetched.output, backbone=backbone, train_folds=p["train_folds"],
                                    test_folds=p["test_folds"], gpus=p["model_gpus"])
    embedded.set_display_name("embed training clips (once)")
    _for_cluster(embedded, "model", **cluster)
    on_model_gpus(embedded, p)
    with dsl.ParallelFor(planned.output, parallelism=parallelism) as cell:
        split = split_folds(dataset_dir=fetched.output, n_shot=cell.n_shot, seed=p["seed"], shot_seed=cell.seed,
                            train_folds=p["train_folds"], validation_clips=p["validation_clips"],
                            test_folds=p["test_folds"])
        split.set_display_name("fold split")
        _for_cluster(split, "light", retried=False, **cluster)
        mixed = simulate_mixtures(dataset_dir=fetched.output, splits=split.output, seed=p["seed"], mix_seed=cell.seed,
                                  epochs=p["epochs"], crop_seconds=p["crop_seconds"], mix_rule=p["mix_rule"],
                                  crop_rule=p["crop_rule"])
        mixed.set_display_name("mixture simulation")
        _for_cluster(mixed, "light", retried=False, **cluster)
        initial = prompts_from_embeddings(embeddings=embedded.output, splits=split.output)
        initial.set_display_name("initial prompts (mean of the cell's clips)")
        _for_cluster(initial, "light", retried=False, **cluster)
        tuned = tuning_task(p, fetched.output, mixed.output, initial.output, backbone, cluster, run_name=cell.run_name,
                            nested_run=True)
        baseline, apt = evaluation_tasks(p, initial.output, tuned, dict(dataset_dir=fetched.output, mixtures=mixed.output,
                                                                     backbone=backbone), cluster)
        scored = score_cell(baseline=baseline.outputs["evaluation"], apt=apt.outputs["evaluation"],
                            tuned_prompts=tuned.outputs["tuned_prompts"], loss=tuned.outputs["loss"],
                            n_shot=cell.n_shot, seed=cell.seed)
        scored.set_display_name("cell scores")
        _for_cluster(scored, "light", retried=False, **cluster)
    aggregated = aggregate_sweep(cells=dsl.Collected(scored.output),
                                 run_params={name: p[name] for name in spec.SWEEP_RESULT_PARAMETERS},
                                 run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER, tracking_uri=p["tracking_uri"],
                                 experiment=p["experiment"], artifact_uri=p["artifact_uri"],
                                 kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER)
    aggregated.set_display_name("Table 2: MLflow and S3")
    _for_cluster(aggregated, "light", **cluster)
    aggregated.set_caching_options(False)  # the MLflow runs and the upload happen on every run
    return aggregated.outputs["sweep"]


def build_sweep_pipeline(profile: str = spec.DEFAULT_PROFILE, parallelism: int = DEFAULT_PARALLELISM,
                         retries: bool = True):
    """The sweep pipeline with one parameter per entry of ``spec.SWEEP_PARAMETERS``, defaulting to ``profile``'s
    values; ``parallelism`` cells run at once (0: all); ``retries=False`` leaves out the network steps' retries
    (for the local runner)."""
    names = [q.name for q in spec.SWEEP_PARAMETERS]

    def apt_uss_sweep(*values) -> dsl.Dataset:
        return _sweep_dag(dict(zip(names, values)), parallelism, retries)

    apt_uss_sweep.__signature__ = signature_of(spec.SWEEP_PARAMETERS, profile, dsl.Dataset)
    apt_uss_sweep.__doc__ = docstring_of(spec.SWEEP_PARAMETERS, f"APT few-shot sweep, Table 2 ({profile} profile).")
    return dsl.pipeline(name=SWEEP_PIPELINE_NAME, description="Audio prompt tuning: every n_shot over several seeds "
                        f"in one run, with intervals ({profile} profile)")(apt_uss_sweep)


apt_uss_sweep = build_sweep_pipeline()
