"""``python -m apt_uss <step> ...``: every pipeline step as a command, for debugging."""

from __future__ import annotations

import argparse
import json
import sys

from . import steps
from .errors import AptUssError
from .logs import configure_logging


def _backbone_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backbone", default="demo", help="named backbone config (demo, tiny, small, paper)")
    p.add_argument("--sed-checkpoint-uri", default="")
    p.add_argument("--separator-checkpoint-uri", default="")
    p.add_argument("--backbone-seed", type=int, default=0, help="init seed for parts without checkpoint")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m apt_uss", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate-parameters", help="check a run's parameters, as the pipeline's first task does")
    p.add_argument("--params", required=True, help="the pipeline parameters as a JSON object, or @FILE holding one")

    p = sub.add_parser("fetch-dataset", help="produce the dataset artifact (ESC-50 layout)")
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--dataset-uri", default="", help="esc50: archive (https, s3, file) or directory")
    p.add_argument("--dataset-sha256", default="", help="expected sha256 of the archive")
    p.add_argument("--n-classes", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output dataset directory")

    p = sub.add_parser("split-folds", help="train/test folds and the n-shot training set")
    p.add_argument("--dataset-dir", required=True)
    p.add_argument("--n-shot", default="5", help="positive integer or 'full'")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-folds", default="1,2,3")
    p.add_argument("--test-folds", default="4,5")
    p.add_argument("--out", required=True, help="output splits CSV")

    p = sub.add_parser("simulate-mixtures", help="training (per epoch) and test mixture tables")
    p.add_argument("--dataset-dir", required=True)
    p.add_argument("--splits", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--crop-seconds", type=float, default=2.0)
    p.add_argument("--mix-rule", default="energy_match", help="energy_match or sum")
    p.add_argument("--crop-rule", default="random", help="random (the paper's) or loud (loudest of 3 starts)")
    p.add_argument("--out", required=True, help="output mixtures directory")

    p = sub.add_parser("init-prompts", help="initial prompts: mean SED embedding per class")
    p.add_argument("--dataset-dir", required=True)
    p.add_argument("--splits", required=True)
    p.add_argument("--out-prompts", required=True)
    p.add_argument("--out-embeddings", required=True)
    _backbone_args(p)

    p = sub.add_parser("tune-prompts", help="audio prompt tuning through the frozen separator")
    p.add_argument("--dataset-dir", required=True)
    p.add_argument("--mixtures-dir", required=True)
    p.add_argument("--prompts", required=True)
    p.add_argument("--out-prompts", required=True)
    p.add_argument("--out-loss", required=True)
    p.add_argument("--out-separator", default="", help="tune=joint: where the tuned separator's weights go")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--lr-schedule", default="constant", help="constant (the paper's) or cosine (decays to 0)")
    p.add_argument("--loss-function", default="l1", help="l1 (the paper's waveform L1) or snr (negative SNR, dB)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--tune", default="prompts", help="prompts (APT) or joint (prompts and separator)")
    p.add_argument("--precision", default="fp32", help="fp32 or bf16 (autocast)")
    p.add_argument("--state-uri", default="", help="folder or s3:// prefix for per-epoch state; resumes from it")
    p.add_argument("--run-name", default="", help="log tune_loss live to this MLflow run (found by name)")
    p.add_argument("--tracking-uri", default="", help="default: $MLFLOW_TRACKING_URI or .apt-uss/mlflow.db")
    p.add_argument("--experiment", default="apt-uss")
    _backbone_args(p)

    p = sub.add_parser("evaluate", help="SDR of one prompt table's estimates on the test mixtures")
    p.add_argument("--dataset-dir", required=True)
    p.add_argument("--mixtures-dir", required=True)
    p.add_argument("--prompts", required=True)
    p.add_argument("--system", required=True, help="baseline or apt")
    p.add_argument("--separator-weights", default="", help="tuned separator from tune=joint")
    p.add_argument("--out", required=True, help="output evaluation directory")
    _backbone_args(p)

    p = sub.add_parser("report", help="baseline vs APT tables; MLflow run and S3 upload")
    p.add_argument("--baseline", required=True, help="evaluation directory of the baseline")
    p.add_argument("--apt", required=True, help="evaluation directory of APT")
    p.add_argument("--initial-prompts", required=True)
    p.add_argument("--tuned-prompts", required=True)
    p.add_argument("--loss", required=True)
    p.add_argument("--out", required=True, help="output report directory")
    p.add_argument("--run-name", default="", help="MLflow run name (default: apt-uss-cli-<time>)")
    p.add_argument("--tracking-uri", default="", help="default: $MLFLOW_TRACKING_URI or .apt-uss/mlflow.db")
    p.add_argument("--experiment", default="apt-uss")
    p.add_argument("--artifact-uri", default="", help="s3://bucket/prefix; empty skips the upload")
    p.add_argument("--params", default="{}", help="JSON object of run parameters to record")
    p.add_argument("--embeddings", default="", help="per-clip embeddings from init-prompts: adds the prompt map")
    p.add_argument("--examples", default="", help="output folder of audio-examples: adds the WAVs and players")
    p.add_argument("--out-html", default="", help="also write the HTML page here")

    p = sub.add_parser("audio-examples", help="WAVs of mixture, reference, baseline and APT for typical test mixtures")
    p.add_argument("--dataset-dir", required=True)
    p.add_argument("--mixtures-dir", required=True)
    p.add_argument("--initial-prompts", required=True)
    p.add_argument("--tuned-prompts", required=True)
    p.add_argument("--baseline", required=True, help="evaluation directory of the baseline")
    p.add_argument("--apt", required=True, help="evaluation directory of APT")
    p.add_argument("--per-class", type=int, default=2, help="mixtures per class")
    p.add_argument("--separator-weights", default="", help="tuned separator from tune=joint")
    p.add_argument("--out", required=True, help="output folder (audio/*.wav, examples.csv)")
    _backbone_args(p)

    p = sub.add_parser("separate", help="separate one class out of an audio file of any length with tuned prompts")
    p.add_argument("--prompts", required=True, help="prompt file: path, file://, https:// or s3:// URI")
    p.add_argument("--class", dest="class_name", required=True, help="class name, as in the prompt file")
    p.add_argument("--chunk-seconds", type=float, default=5.0, help="window the separator sees at a time")
    p.add_argument("--overlap", type=float, default=0.5, help="fraction of a window shared with the next")
    p.add_argument("input", help="input audio file (any length, rate and channel count)")
    p.add_argument("output", help="output audio file (.wav or .flac): same rate, channels and length")
    _backbone_args(p)

    p = sub.add_parser("compare", help="headline SDRs of chosen MLflow runs side by side")
    p.add_argument("runs", nargs="*", help="MLflow run ids (default: the latest runs of --experiment)")
    p.add_argument("--experiment", default="apt-uss")
    p.add_argument("--last", type=int, default=10, help="without run ids: how many of the latest runs")
    p.add_argument("--tracking-uri", default="", help="default: $MLFLOW_TRACKING_URI or .apt-uss/mlflow.db")
    p.add_argument("--csv", default="", help="also write the table here")

    p = sub.add_parser("pretrain-sed", help="demo backbone, stage 1: the SED as a classifier of seen classes")
    p.add_argument("--out", required=True, help="output folder (sed.pt, sed.json)")
    _pretrain_args(p, "sed")

    p = sub.add_parser("pretrain-separator", help="demo backbone, stage 2: the separator queried by SED embeddings")
    p.add_argument("--sed-dir", required=True, help="output folder of pretrain-sed")
    p.add_argument("--out", required=True, help="output folder (backbone.pt, backbone.json)")
    _pretrain_args(p, "separator")
    p.add_argument("--eager", action="store_true", help="train without torch.compile (slower steps, no compile wait)")

    p = sub.add_parser("few-shot-table", help="baseline vs APT by n_shot from an experiment's MLflow runs")
    p.add_argument("--experiment", default="apt-uss-sweep")
    p.add_argument("--tracking-uri", default="", help="default: $MLFLOW_TRACKING_URI or .apt-uss/mlflow.db")
    p.add_argument("--csv", default="", help="also write the table here")
    p.add_argument("--plot", default="", help="also draw the few-shot curves (PNG) here")
    p.add_argument("--log", action="store_true", help="log the table and plot to a summary run of the experiment")

    p = sub.add_parser("models", help="backbone configs: parameter counts and prompt fraction")
    p.add_argument("action", choices=["describe"])
    p.add_argument("config", help="named config, e.g. tiny, small, paper")

    p = sub.add_parser("s3", help="start or stop the local SeaweedFS S3 server")
    p.add_argument("action", choices=["up", "down"])
    p.add_argument("--dir", default="", help="server folder (default: <state>/s3)")
    p.add_argument("--port", type=int, default=8333)

    p = sub.add_parser("mlflow-server", help="start or stop the local MLflow server on PostgreSQL "
                                             "(what RUNNER=docker runs track to)")
    p.add_argument("action", choices=["up", "down"])
    p.add_argument("--dir", default="", help="server folder (default: <state>/mlflow-server)")
    p.add_argument("--port", type=int, default=5000, help="default: 5000 (make: MLFLOW_PORT)")
    p.add_argument("--purge", action="store_true", help="down: also delete the database and its password")
    p.add_argument("--artifact-uri", default="s3://apt-uss/runs",
                   help="the runs' artifact_uri: the server keeps its artifacts in that bucket under "
                        "mlflow-artifacts/ (empty: a folder beside the server)")

    p = sub.add_parser("pipeline-upload", help="upload a compiled pipeline to Kubeflow Pipelines "
                                               "(a new version if the name exists); no run")
    p.add_argument("--host", required=True, help="KFP API endpoint, e.g. http://ml-pipeline-ui.kubeflow")
    p.add_argument("--package", required=True, help="compiled pipeline YAML (make pipeline-compile)")
    p.add_argument("--pipeline-name", required=True)
    p.add_argument("--namespace", default="", help="Kubernetes namespace (multi-user Kubeflow)")
    p.add_argument("--token-file", default="", help="file holding the bearer token (default: $KFP_TOKEN)")
    return parser


def _pretrain_args(p: argparse.ArgumentParser, stage: str) -> None:
    from . import backbone_steps as recipe

    prefix = stage.upper()
    p.add_argument("--config", default="demo")
    p.add_argument("--n-classes", type=int, default=recipe.SEEN_CLASSES, help="seen classes")
    p.add_argument("--clips-per-class", type=int, default=recipe.CLIPS_PER_CLASS)
    p.add_argument("--val-clips", type=int, default=recipe.VAL_CLIPS, help="held out per class")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=getattr(recipe, f"{prefix}_STEPS"))
    p.add_argument("--batch-size", type=int, default=getattr(recipe, f"{prefix}_BATCH_SIZE"))
    p.add_argument("--lr", type=float, default=getattr(recipe, f"{prefix}_LR"))


def _pretrain(a) -> tuple:
    from .params import check_positive, check_seed

    check_positive("lr", a.lr)
    check_positive("steps", a.steps, integer=True)
    check_positive("batch_size", a.batch_size, integer=True)
    check_seed("seed", a.seed)
    return a.config, a.n_classes, a.clips_per_class, a.val_clips, a.seed, a.steps, a.batch_size, a.lr


def _backbone(a) -> dict:
    return {"backbone": a.backbone, "sed_checkpoint_uri": a.sed_checkpoint_uri,
            "separator_checkpoint_uri": a.separator_checkpoint_uri, "backbone_seed": a.backbone_seed,
            "device": a.device}


def _json_object(flag: str, value: str) -> dict:
    """A JSON object given inline or as @FILE."""
    from pathlib import Path

    if value.startswith("@"):
        path = Path(value[1:])
        if not path.is_file():
            raise AptUssError(f"{flag}: file {path} does not exist")
        value = path.read_text()
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise AptUssError(f"{flag} is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise AptUssError(f"{flag} must be a JSON object of parameter names and values")
    return parsed


def _write_csv(table, path: str) -> None:
    if path:
        from .atomic import atomic_path

        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False)


def run(argv: list[str]) -> None:
    a = build_parser().parse_args(argv)
    if a.command == "validate-parameters":
        print(json.dumps(steps.validate_parameters_step(_json_object("--params", a.params))))
    elif a.command == "fetch-dataset":
        manifest = steps.fetch_dataset_step(a.dataset, a.out, a.dataset_uri, a.n_classes, a.seed,
                                            a.dataset_sha256)
        print(json.dumps({k: manifest[k] for k in ("dataset", "n_clips", "n_classes")}))
    elif a.command == "split-folds":
        steps.split_folds_step(a.dataset_dir, a.out, a.n_shot, a.seed, a.train_folds, a.test_folds)
    elif a.command == "simulate-mixtures":
        print(json.dumps(steps.simulate_mixtures_step(a.dataset_dir, a.splits, a.out, a.seed, a.epochs,
                                                      a.crop_seconds, a.mix_rule, a.crop_rule)))
    elif a.command == "init-prompts":
        steps.init_prompts_step(a.dataset_dir, a.splits, a.out_prompts, a.out_embeddings, **_backbone(a))
    elif a.command == "tune-prompts":
        steps.tune_prompts_step(a.dataset_dir, a.mixtures_dir, a.prompts, a.out_prompts, a.out_loss,
                                lr=a.lr, lr_schedule=a.lr_schedule, loss_function=a.loss_function,
                                batch_size=a.batch_size, tune=a.tune,
                                precision=a.precision, out_separator=a.out_separator, state_uri=a.state_uri,
                                run_name=a.run_name, tracking_uri=a.tracking_uri, experiment=a.experiment,
                                **_backbone(a))
    elif a.command == "evaluate":
        table = steps.evaluate_step(a.dataset_dir, a.mixtures_dir, a.prompts, a.out, a.system,
                                    separator_weights=a.separator_weights, **_backbone(a))
        print(json.dumps({"system": a.system, "n_scored": len(table),
                          "sdr_pooled_median": float(table["sdr"].median()) if len(table) else None}))
    elif a.command == "report":
        try:
            params = json.loads(a.params)
        except json.JSONDecodeError as exc:
            raise AptUssError(f"--params is not a JSON object: {exc}") from None
        import time

        run_name = a.run_name or time.strftime("apt-uss-cli-%Y%m%d-%H%M%S")
        result = steps.report_step(a.baseline, a.apt, a.initial_prompts, a.tuned_prompts, a.loss, a.out,
                                   run_params=params, run_name=run_name, tracking_uri=a.tracking_uri,
                                   experiment=a.experiment, artifact_uri=a.artifact_uri,
                                   embeddings_path=a.embeddings, examples_dir=a.examples, out_html=a.out_html)
        print(json.dumps(result["summary"], indent=2))
    elif a.command == "audio-examples":
        table = steps.audio_examples_step(a.dataset_dir, a.mixtures_dir, a.initial_prompts, a.tuned_prompts,
                                          a.baseline, a.apt, a.out, a.per_class,
                                          separator_weights=a.separator_weights, **_backbone(a))
        print(json.dumps({"examples": len(table), "out": a.out}))
    elif a.command == "separate":
        print(json.dumps(steps.separate_step(a.prompts, a.class_name, a.input, a.output,
                                             chunk_seconds=a.chunk_seconds, overlap=a.overlap, **_backbone(a))))
    elif a.command == "compare":
        from .compare import compare_runs, format_comparison
        from .tracking import resolve_tracking_uri

        table = compare_runs(resolve_tracking_uri(a.tracking_uri), a.runs, a.experiment, a.last)
        print(format_comparison(table))
        _write_csv(table, a.csv)
    elif a.command == "pretrain-sed":
        from .backbone_steps import pretrain_sed_step

        print(json.dumps(pretrain_sed_step(a.out, *_pretrain(a)), indent=2))
    elif a.command == "pretrain-separator":
        from .backbone_steps import pretrain_separator_step

        print(json.dumps(pretrain_separator_step(a.sed_dir, a.out, *_pretrain(a), compiled=not a.eager), indent=2))
    elif a.command == "few-shot-table":
        from .sweep import few_shot_table, format_few_shot_table
        from .tracking import resolve_tracking_uri

        uri = resolve_tracking_uri(a.tracking_uri)
        table = few_shot_table(uri, a.experiment)
        print(format_few_shot_table(table))
        _write_csv(table, a.csv)
        if a.plot:
            from .plots import plot_few_shot

            print(f"few-shot curves: {plot_few_shot(table, a.plot)}")
        if a.log:
            from .sweep import log_sweep_summary

            files = [f for f in (a.csv, a.plot) if f]
            print(f"logged to MLflow run {log_sweep_summary(uri, a.experiment, table, files)}")
    elif a.command == "models":
        from .models.describe import describe, format_description

        print(format_description(describe(a.config)))
    elif a.command == "s3":
        from . import local_s3
        from .tracking import state_dir

        folder = a.dir or state_dir() / "s3"
        if a.action == "up":
            env = local_s3.up(folder, a.port)
            print(f"S3 (SeaweedFS) on {env['AWS_ENDPOINT_URL']}; credentials in {folder}/{local_s3.ENV_FILE}")
        else:
            print("stopped" if local_s3.down(folder) else "not running")
    elif a.command == "mlflow-server":
        from . import local_mlflow
        from .container_runner import s3_environment
        from .tracking import state_dir

        folder = a.dir or state_dir() / "mlflow-server"
        if a.action == "up":
            artifacts = local_mlflow.artifacts_destination(a.artifact_uri, folder)
            print(f"MLflow server (PostgreSQL) on {local_mlflow.up(folder, s3_environment(), artifacts, port=a.port)}")
        else:
            print(f"stopped: {', '.join(local_mlflow.down(folder, purge=a.purge)) or 'nothing was running'}")
    elif a.command == "pipeline-upload":
        from .kfp_submit import upload

        print(json.dumps(upload(a.host, a.package, a.pipeline_name, a.namespace, a.token_file or None)))


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    try:
        run(sys.argv[1:] if argv is None else argv)
    except AptUssError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
