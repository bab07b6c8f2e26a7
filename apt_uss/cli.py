"""``python -m apt_uss <command> ...``: separate a recording with tuned prompts, run any pipeline step on its own,
build the corpus, compare runs, and start the local servers.

Every step of the pipeline is a command here with the pipeline's parameters as flags, so a step can be rerun,
inspected or scripted without Kubeflow. Heavy imports (torch, MLflow) wait until a command runs: ``--help``
answers at once."""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from apt_uss.errors import AptUssError
from apt_uss.logs import configure_logging
from apt_uss.params import backbone_recipe as recipe
from apt_uss.params import spec

# Flags of pipeline parameters come from the spec (apt_uss.params.spec): type, allowed values, help, and the
# demo profile's default, as the compiled pipeline has them.
DEMO = spec.defaults("demo")


def _param(p: argparse.ArgumentParser, name: str) -> None:
    q = spec.BY_NAME[name]

    def parse(text: str):
        try:
            return spec.check_choice(name, spec.parse_value(name, text))
        except AptUssError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = q.type.__name__
    text = f"{q.help} (default: %(default)s)".replace("`", "")
    if q.type is bool:  # a switch: given means true
        p.add_argument(q.flag, dest=name, action="store_true", default=DEMO[name], help=text)
    else:
        p.add_argument(q.flag, dest=name, type=parse, default=DEMO[name], help=text,
                       metavar="|".join(q.choices) if q.choices else None)


def _backbone_args(p: argparse.ArgumentParser, recorded: bool = False) -> None:
    """The backbone's flags; ``recorded``: their defaults are the backbone the input prompts record."""
    for name in spec.BACKBONE_PARAMETERS:
        _param(p, name)
        if recorded and name != "device":
            action = next(a for a in p._actions if a.dest == name)
            action.default = None
            action.help = action.help.split(" (default:")[0] + " (default: as the prompts record; demo)"


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help text as written, each option's default where it has one worth showing."""

    def _get_help_string(self, action):
        text = action.help or ""
        shown = action.default not in (None, "", False, argparse.SUPPRESS) and not action.required
        if "%(default)" not in text and shown and (action.option_strings or action.nargs in ("?", "*")):
            text += " (default: %(default)s)"
        return text


class _Commands:
    """``add_parser`` that gives each command its one-line help as its description and the shared formatter."""

    def __init__(self, sub):
        self.sub = sub

    def add_parser(self, name: str, help: str, description: str = "", **kwargs) -> argparse.ArgumentParser:
        return self.sub.add_parser(name, help=help, description=(help[0].upper() + help[1:] + "."
                                                                 + (f"\n\n{description}" if description else "")),
                                   formatter_class=_HelpFormatter, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m apt_uss", description=__doc__.replace("``", ""),
                                     formatter_class=_HelpFormatter)
    sub = _Commands(parser.add_subparsers(dest="command", required=True, metavar="<command>"))

    p = sub.add_parser("validate-parameters", help="check a run's parameters, as the pipeline's first task does")
    p.add_argument("--params", required=True, help="the pipeline parameters as a JSON object, or @FILE holding one")
    p.add_argument("--pipeline", default="run", choices=list(spec.PIPELINES), help="whose parameters: a run's or "
                   "the sweep's (default: %(default)s)")

    p = sub.add_parser("fetch-dataset", help="produce the dataset artifact (ESC-50 layout)")
    _param(p, "dataset")
    _param(p, "dataset_uri")
    _param(p, "dataset_sha256")
    _param(p, "n_classes")
    _param(p, "seed")
    p.add_argument("--out", required=True, help="output dataset directory")

    p = sub.add_parser("split-folds", help="train/test folds and the n-shot training set")
    p.add_argument("--dataset-dir", required=True)
    _param(p, "n_shot")
    _param(p, "seed")
    _param(p, "shot_seed")
    _param(p, "validation_clips")
    _param(p, "train_folds")
    _param(p, "test_folds")
    p.add_argument("--out", required=True, help="output splits CSV")

    p = sub.add_parser("simulate-mixtures", help="training (per epoch) and test mixture tables")
    p.add_argument("--dataset-dir", required=True)
    p.add_argument("--splits", required=True)
    _param(p, "seed")
    _param(p, "mix_seed")
    _param(p, "epochs")
    _param(p, "crop_seconds")
    _param(p, "mix_rule")
    _param(p, "crop_rule")
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
    _param(p, "lr")
    _param(p, "lr_schedule")
    _param(p, "loss_function")
    _param(p, "batch_size")
    _param(p, "tune")
    _param(p, "precision")
    _param(p, "keep_best_epoch")
    p.add_argument("--state-uri", default="", help="folder or s3:// prefix for per-epoch state; resumes from it")
    p.add_argument("--run-name", default="", help="log tune_loss live to this MLflow run (found by name)")
    p.add_argument("--nested-run", action="store_true",
                   help="the run is a sweep cell's: with MLFLOW_RUN_ID set, nest it under that run instead of using it")
    _param(p, "tracking_uri")
    _param(p, "experiment")
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
    _param(p, "tracking_uri")
    _param(p, "experiment")
    _param(p, "artifact_uri")
    p.add_argument("--params", default="{}", help="JSON object of run parameters to record")
    p.add_argument("--embeddings", default="", help="per-clip embeddings from init-prompts: adds the prompt map")
    p.add_argument("--examples", default="", help="output folder of audio-examples: adds the WAVs and players")
    p.add_argument("--out-html", default="", help="also write the HTML page here")

    p = sub.add_parser("plan-sweep", help="the sweep's cells: every n_shot with every seed (JSON)")
    _param(p, "sweep_shots")
    _param(p, "seeds")
    p.add_argument("--run-name", default="", help="the sweep's run name: each cell's run is <run name>-<cell>")

    p = sub.add_parser("embed-training-clips", help="the sweep's shared step: embed every training-fold clip once")
    p.add_argument("--dataset-dir", required=True)
    _param(p, "train_folds")
    _param(p, "test_folds")
    p.add_argument("--out", required=True, help="output embeddings file (.npz)")
    _backbone_args(p)

    p = sub.add_parser("prompts-from-embeddings", help="a sweep cell's initial prompts from the shared embeddings")
    p.add_argument("--embeddings", required=True, help="output of embed-training-clips")
    p.add_argument("--splits", required=True)
    p.add_argument("--out", required=True, help="output prompt file (.npz)")

    p = sub.add_parser("score-cell", help="one sweep cell's scores from its two evaluations")
    p.add_argument("--baseline", required=True, help="evaluation directory of the baseline")
    p.add_argument("--apt", required=True, help="evaluation directory of APT")
    p.add_argument("--tuned-prompts", required=True)
    p.add_argument("--loss", required=True)
    p.add_argument("--n-shot", required=True)
    p.add_argument("--seed", required=True, type=int, help="the cell's shot and mixture seed")
    p.add_argument("--out", required=True, help="output cell directory")

    p = sub.add_parser("aggregate-sweep", help="Table 2 with intervals from sweep cells; MLflow parent run and S3")
    p.add_argument("cells", nargs="+", help="cell directories (score-cell outputs)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--run-name", default="apt-uss-sweep-cli", help="MLflow parent run name")
    _param(p, "tracking_uri")
    _param(p, "experiment")
    _param(p, "artifact_uri")
    p.add_argument("--params", default="{}", help="JSON object of sweep parameters to record")

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

    p = sub.add_parser("separate", help="separate one class out of an audio file of any length with tuned prompts",
                       description="The prompts come from a prompt file or a logged model; the backbone is the one "
                                   "they record unless the backbone options name another (which must have the same "
                                   "weights). Without --class, the error lists the classes the prompts have.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompts", help="prompt file: path, file://, https:// or s3:// URI (s3:// finds the local "
                                          "S3 server's keys, as the pipeline does)")
    source.add_argument("--model", dest="prompts", metavar="MODEL_URI", help="a logged model: "
                        "models:/<name>/<version> or runs:/<run id>/model")
    p.add_argument("--class", dest="class_name", default="", help="class name, as in the prompts")
    p.add_argument("--chunk-seconds", type=float, default=5.0, help="window the separator sees at a time")
    p.add_argument("--overlap", type=float, default=0.5, help="fraction of a window shared with the next")
    p.add_argument("input", help="input audio file (any length, rate and channel count)")
    p.add_argument("output", help="output audio file (.wav, .flac, or another format libsndfile writes): same rate, "
                                  "channels and length")
    _param(p, "tracking_uri")
    _backbone_args(p, recorded=True)

    p = sub.add_parser("export-onnx", help="export the separator with one class's prompt to ONNX, checked with "
                                           "onnxruntime against PyTorch",
                       description="The graph maps mixture (batch, samples) at 32 kHz to estimate (same shape); the "
                                   "length is fixed by --seconds. A JSON card beside the file records the shapes, "
                                   "the backbone and the check (docs/serving.md).")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompts", help="prompt file: path, file://, https:// or s3:// URI")
    source.add_argument("--model", dest="prompts", metavar="MODEL_URI",
                        help="a logged model: models:/<name>/<version> or runs:/<id>/model")
    p.add_argument("--class", dest="class_name", default="", help="the class whose prompt the graph holds")
    p.add_argument("--out", required=True, help="output .onnx file")
    p.add_argument("--seconds", type=float, default=5.0, help="input length the graph takes")
    p.add_argument("--check-audio", default="", help="audio file to compare onnxruntime with PyTorch on "
                                                     "(default: seeded noise)")
    _param(p, "tracking_uri")
    _backbone_args(p, recorded=True)

    p = sub.add_parser("build-corpus", help="build the real-audio corpus (debian_sounds and its seen part) offline")
    p.add_argument("--out", default="", help="output folder (default: <cache>/corpus, where DATASET=debian_sounds "
                                             "and the backbone look)")
    p.add_argument("--deb-dir", default="", help="folder holding the pinned .deb (air-gapped machines); "
                                                 "default: apt-get download into the cache")
    p.add_argument("--force", action="store_true", help="build again even if an up-to-date build is there")

    p = sub.add_parser("compare", help="headline SDRs of chosen MLflow runs side by side")
    p.add_argument("runs", nargs="*", help="MLflow run ids (default: the latest runs of --experiment)")
    _param(p, "experiment")
    p.add_argument("--last", type=int, default=10, help="without run ids: how many of the latest runs")
    _param(p, "tracking_uri")
    p.add_argument("--csv", default="", help="also write the table here")

    p = sub.add_parser("pretrain-sed", help="demo backbone, stage 1: the SED as a classifier of seen classes")
    p.add_argument("--out", required=True, help="output folder (sed.pt, sed.json)")
    _pretrain_args(p, "sed")

    p = sub.add_parser("shipped-sed", help="demo backbone: the shipped SED as a pretrain-sed output folder "
                                           "(to train a separator only)")
    p.add_argument("--out", required=True, help="output folder (sed.pt, sed.json)")
    p.add_argument("--config", default="demo", help="a config with shipped weights (default: %(default)s)")

    p = sub.add_parser("pretrain-separator", help="demo backbone, stage 2: the separator queried by SED embeddings")
    p.add_argument("--sed-dir", required=True, help="output folder of pretrain-sed or shipped-sed")
    p.add_argument("--out", required=True, help="output folder (backbone.pt, backbone.json)")
    _pretrain_args(p, "separator")
    p.add_argument("--eager", action="store_true", help="train without torch.compile (slower steps, no compile wait)")

    p = sub.add_parser("few-shot-table", help="baseline vs APT by n_shot from an experiment's MLflow runs")
    p.add_argument("--experiment", default="apt-uss", help="MLflow experiment (default: %(default)s)")
    _param(p, "tracking_uri")
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
    prefix = stage.upper()
    # The backbone recipe's own settings (the backbone pipeline's parameters), not the APT pipeline's.
    p.add_argument("--config", default="demo")
    p.add_argument("--corpus", default=recipe.CORPUS, choices=recipe.CORPORA,
                   help="the seen classes: real recordings (`make corpus`) or synthetic (default: %(default)s)")
    p.add_argument("--corpus-uri", default="", help="a copy of the seen corpus archive (default: the one built here)")
    p.add_argument("--n-classes", type=int, default=recipe.SEEN_CLASSES, help="seen classes")
    p.add_argument("--clips-per-class", type=int, default=recipe.CLIPS_PER_CLASS)
    p.add_argument("--val-clips", type=int, default=recipe.VAL_CLIPS, help="held out per class")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=getattr(recipe, f"{prefix}_STEPS"))
    p.add_argument("--batch-size", type=int, default=getattr(recipe, f"{prefix}_BATCH_SIZE"))
    p.add_argument("--lr", type=float, default=getattr(recipe, f"{prefix}_LR"))


def _pretrain(a) -> tuple:
    from apt_uss.params.checks import check_positive, check_seed

    check_positive("lr", a.lr)
    check_positive("steps", a.steps, integer=True)
    check_positive("batch_size", a.batch_size, integer=True)
    check_seed("seed", a.seed)
    return dict(config=a.config, corpus=a.corpus, corpus_uri=a.corpus_uri, n_classes=a.n_classes,
                clips_per_class=a.clips_per_class, val_clips=a.val_clips, seed=a.seed, steps=a.steps,
                batch_size=a.batch_size, lr=a.lr)


def _backbone(a) -> dict:
    """The step's ``backbone`` argument: the backbone spec from its flags."""
    return {"backbone": {name: getattr(a, name) for name in spec.BACKBONE_PARAMETERS}}


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
        from apt_uss.io.atomic import atomic_path

        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False)


class _Lazy:
    """A module imported when one of its names is first read: torch, pandas and scipy take seconds to import, the
    data steps need no torch, the run's steps no scipy, and ``--help`` none of them."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        return getattr(importlib.import_module(self._name), attr)


data_steps = _Lazy("apt_uss.steps.data")
steps = _Lazy("apt_uss.steps.pipeline")
sweep_steps = _Lazy("apt_uss.steps.sweep")
validation_steps = _Lazy("apt_uss.steps.validation")


def run(argv: list[str]) -> None:
    a = build_parser().parse_args(argv)
    # The steps' modules load on first use (see _Lazy): a command imports only the one it runs.
    if a.command == "validate-parameters":
        print(json.dumps(validation_steps.validate_parameters_step(_json_object("--params", a.params),
                                                                   pipeline=a.pipeline)))
    elif a.command == "fetch-dataset":
        manifest = data_steps.fetch_dataset_step(dataset=a.dataset, out_dataset=a.out, dataset_uri=a.dataset_uri,
                                                 n_classes=a.n_classes, seed=a.seed, dataset_sha256=a.dataset_sha256)
        print(json.dumps({k: manifest[k] for k in ("dataset", "n_clips", "n_classes")}))
    elif a.command == "split-folds":
        data_steps.split_folds_step(dataset_dir=a.dataset_dir, out_splits=a.out, n_shot=a.n_shot, seed=a.seed,
                                    shot_seed=a.shot_seed, train_folds=a.train_folds, test_folds=a.test_folds,
                                    validation_clips=a.validation_clips)
    elif a.command == "simulate-mixtures":
        print(json.dumps(data_steps.simulate_mixtures_step(
            dataset_dir=a.dataset_dir, splits_path=a.splits, out_mixtures=a.out, seed=a.seed, mix_seed=a.mix_seed, epochs=a.epochs,
            crop_seconds=a.crop_seconds, mix_rule=a.mix_rule, crop_rule=a.crop_rule)))
    elif a.command == "init-prompts":
        steps.init_prompts_step(dataset_dir=a.dataset_dir, splits_path=a.splits, out_prompts=a.out_prompts,
                                out_embeddings=a.out_embeddings, **_backbone(a))
    elif a.command == "tune-prompts":
        steps.tune_prompts_step(dataset_dir=a.dataset_dir, mixtures_dir=a.mixtures_dir, prompts_path=a.prompts,
                                out_prompts=a.out_prompts, out_loss=a.out_loss,
                                lr=a.lr, lr_schedule=a.lr_schedule, loss_function=a.loss_function,
                                keep_best_epoch=a.keep_best_epoch,
                                batch_size=a.batch_size, tune=a.tune,
                                precision=a.precision, out_separator=a.out_separator, state_uri=a.state_uri,
                                run_name=a.run_name, tracking_uri=a.tracking_uri, experiment=a.experiment,
                                nested_run=a.nested_run, **_backbone(a))
    elif a.command == "evaluate":
        table = steps.evaluate_step(dataset_dir=a.dataset_dir, mixtures_dir=a.mixtures_dir, prompts_path=a.prompts,
                                    out_dir=a.out, system=a.system,
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
        result = steps.report_step(baseline_dir=a.baseline, apt_dir=a.apt, initial_prompts_path=a.initial_prompts,
                                   tuned_prompts_path=a.tuned_prompts, loss_path=a.loss, out_report=a.out,
                                   run_params=params, run_name=run_name, tracking_uri=a.tracking_uri,
                                   experiment=a.experiment, artifact_uri=a.artifact_uri,
                                   embeddings_path=a.embeddings, examples_dir=a.examples, out_html=a.out_html)
        print(json.dumps(result["summary"], indent=2))
    elif a.command == "plan-sweep":
        print(json.dumps(sweep_steps.plan_sweep_step(sweep_shots=a.sweep_shots, seeds=a.seeds, run_name=a.run_name)))
    elif a.command == "embed-training-clips":
        print(json.dumps({"clips": sweep_steps.embed_training_clips_step(
            dataset_dir=a.dataset_dir, out_embeddings=a.out, train_folds=a.train_folds, test_folds=a.test_folds,
            **_backbone(a))}))
    elif a.command == "prompts-from-embeddings":
        sweep_steps.prompts_from_embeddings_step(embeddings_path=a.embeddings, splits_path=a.splits, out_prompts=a.out)
    elif a.command == "score-cell":
        print(json.dumps(sweep_steps.score_cell_step(baseline_dir=a.baseline, apt_dir=a.apt,
                                                     tuned_prompts_path=a.tuned_prompts, loss_path=a.loss,
                                                     out_cell=a.out, n_shot=a.n_shot, seed=a.seed), indent=2))
    elif a.command == "aggregate-sweep":
        result = sweep_steps.aggregate_sweep_step(cell_dirs=a.cells, out_dir=a.out,
                                                  run_params=_json_object("--params", a.params), run_name=a.run_name,
                                                  tracking_uri=a.tracking_uri, experiment=a.experiment,
                                                  artifact_uri=a.artifact_uri)
        print(result["text"])
    elif a.command == "audio-examples":
        table = steps.audio_examples_step(dataset_dir=a.dataset_dir, mixtures_dir=a.mixtures_dir,
                                          initial_prompts_path=a.initial_prompts, tuned_prompts_path=a.tuned_prompts,
                                          baseline_dir=a.baseline, apt_dir=a.apt, out_dir=a.out, per_class=a.per_class,
                                          separator_weights=a.separator_weights, **_backbone(a))
        print(json.dumps({"examples": len(table), "out": a.out}))
    elif a.command == "separate":
        # Only the backbone options given: the rest come from the prompts' record (apt_uss.serving.load_separator).
        backbone = {name: getattr(a, name) for name in spec.BACKBONE_PARAMETERS if getattr(a, name) is not None}
        print(json.dumps(steps.separate_step(prompts_uri=a.prompts, class_name=a.class_name, input_path=a.input,
                                             output_path=a.output, backbone=backbone, chunk_seconds=a.chunk_seconds,
                                             overlap=a.overlap, tracking_uri=a.tracking_uri)))
    elif a.command == "export-onnx":
        from apt_uss.serving.onnx_export import export_onnx

        backbone = {name: getattr(a, name) for name in spec.BACKBONE_PARAMETERS if getattr(a, name) is not None}
        card = export_onnx(a.prompts, a.class_name, a.out, backbone=backbone, seconds=a.seconds,
                           check_audio=a.check_audio, tracking_uri=a.tracking_uri)
        print(json.dumps({k: card[k] for k in ("onnx", "class", "sample_rate", "inputs", "outputs", "check")},
                         indent=2))
    elif a.command == "compare":
        from apt_uss.io.tracking import resolve_tracking_uri
        from apt_uss.results.compare import compare_runs, format_comparison

        table = compare_runs(resolve_tracking_uri(a.tracking_uri), a.runs, a.experiment, a.last)
        print(format_comparison(table))
        _write_csv(table, a.csv)
    elif a.command == "pretrain-sed":
        from apt_uss.steps.backbone import pretrain_sed_step

        print(json.dumps(pretrain_sed_step(a.out, **_pretrain(a)), indent=2))
    elif a.command == "shipped-sed":
        from apt_uss.steps.backbone import shipped_sed_step

        print(json.dumps(shipped_sed_step(a.out, a.config), indent=2))
    elif a.command == "pretrain-separator":
        from apt_uss.steps.backbone import pretrain_separator_step

        print(json.dumps(pretrain_separator_step(a.sed_dir, a.out, **_pretrain(a), compiled=not a.eager), indent=2))
    elif a.command == "few-shot-table":
        from apt_uss.io.tracking import resolve_tracking_uri
        from apt_uss.results.sweep import few_shot_table, format_few_shot_table

        uri = resolve_tracking_uri(a.tracking_uri)
        table = few_shot_table(uri, a.experiment)
        print(format_few_shot_table(table))
        _write_csv(table, a.csv)
        if a.plot:
            from apt_uss.results.plots import plot_few_shot

            print(f"few-shot curves: {plot_few_shot(table, a.plot)}")
        if a.log:
            from apt_uss.results.sweep import log_sweep_summary

            files = [f for f in (a.csv, a.plot) if f]
            print(f"logged to MLflow run {log_sweep_summary(uri, a.experiment, table, files)}")
    elif a.command == "build-corpus":
        from apt_uss.data.debian_sounds import build_corpus

        print(json.dumps(build_corpus(a.out or None, a.deb_dir or None, force=a.force), indent=2))
    elif a.command == "models":
        from apt_uss.models.describe import describe, format_description

        print(format_description(describe(a.config)))
    elif a.command == "s3":
        from apt_uss.io.paths import state_dir
        from apt_uss.tools import local_s3

        folder = a.dir or state_dir() / "s3"
        if a.action == "up":
            env = local_s3.up(folder, a.port)
            print(f"S3 (SeaweedFS) on {env['AWS_ENDPOINT_URL']}; credentials in {folder}/{local_s3.ENV_FILE}")
        else:
            print("stopped" if local_s3.down(folder) else "not running")
    elif a.command == "mlflow-server":
        from apt_uss.io.paths import state_dir
        from apt_uss.tools import local_mlflow
        from apt_uss.tools.container_runner import s3_environment

        folder = a.dir or state_dir() / "mlflow-server"
        if a.action == "up":
            artifacts = local_mlflow.artifacts_destination(a.artifact_uri, folder)
            print(f"MLflow server (PostgreSQL) on {local_mlflow.up(folder, s3_environment(), artifacts, port=a.port)}")
        else:
            print(f"stopped: {', '.join(local_mlflow.down(folder, purge=a.purge)) or 'nothing was running'}")
    elif a.command == "pipeline-upload":
        from apt_uss.tools.kfp_submit import upload

        print(json.dumps(upload(a.host, a.package, a.pipeline_name, a.namespace, a.token_file or None)))


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    try:
        run(sys.argv[1:] if argv is None else argv)
    except AptUssError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
