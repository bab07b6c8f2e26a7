"""The pipeline steps, as plain functions over file paths.

The CLI (``python -m apt_uss <step>``) and the KFP components both call these, so a
step debugged on the command line behaves exactly as it does in the pipeline. The data steps
(fetch, split, mixtures) are in ``apt_uss.steps.data``, which imports no torch.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from pathlib import Path

import pandas as pd
import torch

from apt_uss.data.audio import SAMPLE_RATE
from apt_uss.data.clips import ClipStore, read_clip
from apt_uss.errors import AptUssError
from apt_uss.evaluation.evaluate import compare_systems, evaluate_prompts
from apt_uss.evaluation.metrics import (
    SCORE_PREFIXES,
    SCORES,
    SDR_DEFINITION,
    SYSTEMS,
    median_sdr_by_class,
    per_track_medians,
    summarise,
)
from apt_uss.evaluation.separation import check_separate_options
from apt_uss.io import storage, tracking
from apt_uss.io.atomic import atomic_path
from apt_uss.io.paths import state_dir
from apt_uss.io.provenance import code_provenance
from apt_uss.io.tables import read_record, read_table
from apt_uss.io.uris import safe_name
from apt_uss.method.prompts import (
    embed_clips,
    initial_prompts,
    load_embeddings,
    load_prompt_provenance,
    load_prompts,
    save_embeddings,
    save_prompts,
)
from apt_uss.method.tuning import tune_prompts
from apt_uss.method.tuning_state import EpochState, fingerprint
from apt_uss.models.backbone import BackboneSpec
from apt_uss.models.checkpoints import export_backbone
from apt_uss.models.device import resolve_device, use_available_cores
from apt_uss.params.checks import check_positive, check_state_uri, check_tune_options
from apt_uss.params.spec import registered_model_name
from apt_uss.results import plots
from apt_uss.results.compare import PROVENANCE_PREFIX
from apt_uss.results.examples import EXAMPLES_TABLE, pick_examples, render_examples
from apt_uss.results.html_report import write_html_report
from apt_uss.serving.mlflow_model import log_prompt_model
from apt_uss.serving.separator import load_separator, separate_file
from apt_uss.steps.data import (  # the data steps live there (no torch)
    DEMO,
    MIXING,
    MIXTURE_COLUMNS,
    SPLITS_COLUMNS,
    VALIDATION_MIXTURES,
)

log = logging.getLogger(__name__)
LOSS_COLUMNS = ("epoch", "loss")  # the tuning loss table: one row per epoch


def _clip_store(dataset_dir: str, mixtures: pd.DataFrame) -> ClipStore:
    """Short event clips are loaded once; minutes-long tracks (rows with their own mixture) are read per segment."""
    store = ClipStore(dataset_dir)
    if "mixture_file" not in mixtures.columns:
        store.preload(pd.concat([mixtures["target_file"], mixtures["interferer_file"]]))
    return store


def init_prompts_step(dataset_dir: str, splits_path: str, out_prompts: str, out_embeddings: str,
                      backbone: BackboneSpec | dict | str = DEMO["backbone"], requested_gpus: int | str = 0):
    """The initial prompts: each class's mean embedding of its training clips. ``requested_gpus``: what the pod
    asked for (``model_gpus``), said in the log beside what it sees."""
    spec = BackboneSpec.of(backbone)
    use_available_cores()
    dev = resolve_device(spec.device)
    say_requested_gpus(requested_gpus, dev)
    model = spec.load().to(dev)
    splits = read_table(splits_path, "the splits table", SPLITS_COLUMNS)
    train = splits[splits["split"] == "train"]
    clips = ((name, read_clip(dataset_dir, name)) for name in train["filename"])
    embeddings = embed_clips(model.sed, clips, len(train), SAMPLE_RATE, dev)
    prompts, targets, names = initial_prompts(train, embeddings)
    provenance = _run_provenance(model, dataset_dir)
    save_prompts(out_prompts, prompts, targets, names, provenance=provenance, backbone=spec.record())
    save_embeddings(out_embeddings, embeddings, train, provenance=provenance, backbone=spec.record())
    log.info("initial prompts: %d classes x %d dims from %d clips", *prompts.shape, len(train))
    return prompts


def _run_provenance(model, dataset_dir: str) -> dict[str, str]:
    """What a prompt table came from: the backbone's weights and the dataset's content fingerprint."""
    manifest = Path(dataset_dir) / "dataset.json"
    fingerprint = json.loads(manifest.read_text()).get("fingerprint", "") if manifest.is_file() else ""
    return {**model.provenance, "dataset_fingerprint": fingerprint or "unknown"}


def default_state_uri(artifact_uri: str, run_name: str, checkpoint_uri: str = "") -> str:
    """Where tuning keeps its per-epoch state: ``<checkpoint_uri>/<run>``, else beside the run's S3
    artifacts, else in the local state folder.

    Every choice is keyed by the pipeline run's name, which a KFP retry keeps and a new run does not.
    """
    safe = safe_name(run_name) or "run"
    if checkpoint_uri:
        return f"{checkpoint_uri.rstrip('/')}/{safe}"
    if artifact_uri:
        return f"{artifact_uri.rstrip('/')}/{safe}/tune-state"
    return str(state_dir() / "tune-state" / safe)


def tune_prompts_step(dataset_dir: str, mixtures_dir: str, prompts_path: str, out_prompts: str,
                      out_loss: str, backbone: BackboneSpec | dict | str = DEMO["backbone"], lr: float = DEMO["lr"],
                      batch_size: int = DEMO["batch_size"], tune: str = DEMO["tune"],
                      precision: str = DEMO["precision"],
                      out_separator: str = "", state_uri: str = "", run_name: str = "", tracking_uri: str = "",
                      experiment: str = DEMO["experiment"], lr_schedule: str = DEMO["lr_schedule"],
                      loss_function: str = DEMO["loss_function"], keep_best_epoch: bool = DEMO["keep_best_epoch"],
                      requested_gpus: int | str = 0, nested_run: bool = False, kfp_run_id: str = ""):
    """Tune the prompts; with ``state_uri`` resume from / save to per-epoch state; with ``run_name`` log live to MLflow
    (``nested_run``: a sweep cell's run, nested under the pipeline run's MLflow run when ``MLFLOW_RUN_ID`` names one).

    ``out_separator`` receives the tuned separator's state dict for ``tune="joint"``, and is
    left empty (zero bytes: "the backbone as given") for ``tune="prompts"``.
    """
    check_positive("lr", lr)
    check_positive("batch_size", batch_size, integer=True)
    check_tune_options(tune, precision, lr_schedule, loss_function)
    check_state_uri(state_uri)
    spec = BackboneSpec.of(backbone)
    use_available_cores()
    dev = resolve_device(spec.device)
    on_epoch = None
    if run_name:
        uri = tracking.resolve_tracking_uri(tracking_uri)
        tracking.check_tracking(uri)  # fail now, not after hours of tuning
        run_id = tracking.open_run(uri, experiment, run_name,
                                   tags={"stage": "tuning", **tracking.kfp_tag(kfp_run_id)}, nested=nested_run)
        on_epoch = tracking.EpochLossLogger(uri, run_id)
    info = _mixing_record(mixtures_dir)
    train_mix = read_table(Path(mixtures_dir) / "train_mixtures.csv", "the training mixture table", MIXTURE_COLUMNS)
    initial, targets, names = load_prompts(prompts_path)
    model = spec.load()
    clips = _clip_store(dataset_dir, train_mix)
    validation_path = Path(mixtures_dir) / VALIDATION_MIXTURES
    validation_mix = read_table(validation_path, "the validation mixture table", MIXTURE_COLUMNS) \
        if validation_path.is_file() else None
    if keep_best_epoch and validation_mix is None:
        raise AptUssError("keep_best_epoch=true needs validation mixtures: set validation_clips to 1 or more")
    if validation_mix is not None:
        clips.preload(pd.concat([validation_mix["target_file"], validation_mix["interferer_file"]]))
    state = None
    if state_uri:
        weights = spec.separator_weights_uri()  # the shipped ones pinned by sha256: retrained weights do not resume
        manifest = Path(dataset_dir) / "dataset.json"
        settings = {"lr": float(lr), "lr_schedule": lr_schedule, "loss_function": loss_function,
                    "batch_size": int(batch_size), "tune": tune,
                    "precision": precision, "mix_rule": info["mix_rule"], "crop_samples": info["crop_samples"],
                    "backbone": spec.name, "sed": spec.sed_checkpoint_uri, "separator": weights, "seed": spec.seed,
                    "device": dev.type, "dataset": manifest.read_text() if manifest.is_file() else dataset_dir,
                    **({"keep_best_epoch": True} if keep_best_epoch else {}),
                    **({"validation": validation_path.read_text()} if validation_mix is not None else {})}
        state = EpochState(state_uri, fingerprint(initial, train_mix, settings))
    log.info("tuning (%s, %s) %d prompts on %s: %d mixtures, %s loss, lr %g (%s), batch %d", tune, precision,
             len(initial), dev, len(train_mix), loss_function, lr, lr_schedule, batch_size)
    say_requested_gpus(requested_gpus, dev)
    try:
        tuned, history = tune_prompts(model.separator, initial, targets, train_mix, clips, info["mix_rule"],
                                      info["crop_samples"], lr=float(lr), batch_size=int(batch_size), device=dev,
                                      mode=tune, precision=precision, lr_schedule=lr_schedule,
                                      loss_function=loss_function, state=state,
                                      on_epoch=on_epoch, validation_mixtures=validation_mix,
                                      keep_best_epoch=bool(keep_best_epoch))
    except BaseException:
        if on_epoch is not None:  # not left "running" in the MLflow UI; a retry or the report reopens it
            on_epoch.mark_failed()
        raise
    save_prompts(out_prompts, tuned, targets, names, provenance=_run_provenance(model, dataset_dir),
                 backbone=spec.record())
    with atomic_path(out_loss) as tmp:
        history.to_csv(tmp, index=False)
    if out_separator:
        with atomic_path(out_separator) as tmp:
            if tune == "joint":  # with the SED embedded, as the official separator checkpoint: one whole backbone
                export_backbone(model.sed, model.separator, tmp)
            else:
                tmp.write_bytes(b"")
    return tuned, history


def _tuned_separator(separator_weights: str) -> str:
    """The tuned separator's weights from tune=joint, or "" (tune=prompts leaves an empty file)."""
    return separator_weights if separator_weights and Path(separator_weights).stat().st_size > 0 else ""


def _mixing_record(mixtures_dir: str) -> dict:
    """The mixture step's record (``mixing.json``): how its mixtures are made."""
    return read_record(Path(mixtures_dir) / MIXING, "the mixtures' record", ("mix_rule", "crop_samples"))


def _test_side(backbone, mixtures_dir: str) -> tuple[BackboneSpec, torch.device, dict, pd.DataFrame]:
    """What the steps on test mixtures share: the backbone spec and its device, the mixing info, the test table."""
    spec = BackboneSpec.of(backbone)
    use_available_cores()
    info = _mixing_record(mixtures_dir)
    test_mix = read_table(Path(mixtures_dir) / "test_mixtures.csv", "the test mixture table", MIXTURE_COLUMNS)
    return spec, resolve_device(spec.device), info, test_mix


def _with_tuned_separator(spec: BackboneSpec, separator_weights: str) -> BackboneSpec:
    """``spec`` with the separator tuned by tune=joint, where ``separator_weights`` holds one."""
    tuned = _tuned_separator(separator_weights)
    return dataclasses.replace(spec, separator_checkpoint_uri=tuned) if tuned else spec


def say_requested_gpus(requested_gpus: int | str, dev: torch.device) -> None:
    """Log what a step's pod asked for (``tune_gpus``, ``model_gpus``) beside what it sees: a warning where a pod in
    Kubernetes asked for GPUs and sees none (a node without them, or an image without a CUDA torch) and runs on the
    CPU. Outside Kubernetes the local runners ignore the request, and nothing is said."""
    requested = int(requested_gpus or 0)
    if not requested:
        return
    if dev.type == "cuda":
        log.info("the pod asked for %d GPU(s); %d visible, running on %s", requested, torch.cuda.device_count(), dev)
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        log.warning("the pod asked for %d GPU(s) but sees none: running on the CPU (does the node have GPUs, and the "
                    "image a CUDA build of torch?)", requested)


def evaluate_step(dataset_dir: str, mixtures_dir: str, prompts_path: str, out_dir: str, system: str,
                  backbone: BackboneSpec | dict | str = DEMO["backbone"], separator_weights: str = "",
                  requested_gpus: int | str = 0) -> pd.DataFrame:
    """SDR of one prompt table's estimates on every test mixture (``system``: baseline or apt).

    ``separator_weights``, when a non-empty file (from ``tune=joint``), replaces the backbone's separator.
    ``requested_gpus``: what the pod asked for (``model_gpus``), said in the log beside what it sees.
    """
    if system not in SYSTEMS:
        raise AptUssError(f"system={system!r} is not valid: use one of {', '.join(SYSTEMS)}")
    spec, dev, info, test_mix = _test_side(backbone, mixtures_dir)
    prompts, targets, _ = load_prompts(prompts_path)
    model = _with_tuned_separator(spec, separator_weights).load()
    clips = _clip_store(dataset_dir, test_mix)
    log.info("evaluating %s prompts on %d test mixtures (%s)", system, len(test_mix), dev)
    say_requested_gpus(requested_gpus, dev)
    table, counts = evaluate_prompts(model.separator, test_mix, clips, prompts, targets, info["mix_rule"], device=dev)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        table.to_csv(tmp / "per_mixture.csv", index=False)
        (tmp / "evaluation.json").write_text(json.dumps(
            {"system": system, "sdr_definition": SDR_DEFINITION, "n_scored": int(len(table)), **counts}, indent=2))
    return table


def audio_examples_step(dataset_dir: str, mixtures_dir: str, initial_prompts_path: str, tuned_prompts_path: str,
                        baseline_dir: str, apt_dir: str, out_dir: str,
                        per_class: int = DEMO["audio_examples_per_class"],
                        backbone: BackboneSpec | dict | str = DEMO["backbone"],
                        separator_weights: str = "", requested_gpus: int | str = 0) -> pd.DataFrame:
    """WAVs of the mixture, reference and both estimates for ``per_class`` typical test mixtures per class.
    ``requested_gpus``: what the pod asked for (``model_gpus``), said in the log beside what it sees."""
    if not float(per_class).is_integer() or per_class < 0:
        raise AptUssError(f"audio_examples_per_class={per_class!r} is not valid: use 0 (none) or more")
    spec, dev, info, test_mix = _test_side(backbone, mixtures_dir)
    say_requested_gpus(requested_gpus, dev)
    baseline, _ = _read_evaluation(baseline_dir, "baseline")
    apt, _ = _read_evaluation(apt_dir, "apt")
    try:
        picks = pick_examples(compare_systems(baseline, apt), int(per_class))
    except ValueError as exc:
        raise AptUssError(str(exc)) from None
    initial, targets, _ = load_prompts(initial_prompts_path)
    tuned, _, _ = load_prompts(tuned_prompts_path)
    model = spec.load().to(dev)
    apt_separator = model.separator
    if _tuned_separator(separator_weights):
        apt_separator = _with_tuned_separator(spec, separator_weights).load().separator.to(dev)
    clips = ClipStore(dataset_dir)
    with atomic_path(out_dir) as tmp:
        table = render_examples({"baseline": (model.separator, initial), "apt": (apt_separator, tuned)}, picks,
                                test_mix, clips, info["mix_rule"], targets, tmp, SAMPLE_RATE, dev)
    log.info("audio examples: %d mixtures x 4 files (%d per class)", len(table), per_class)
    return table


def separate_step(prompts_uri: str, class_name: str, input_path: str, output_path: str,
                  backbone: BackboneSpec | dict | str | None = None, chunk_seconds: float = 5.0,
                  overlap: float = 0.5, tracking_uri: str = "") -> dict:
    """Separate ``class_name`` out of an audio file of any length with a prompt table (path, S3, https) or a logged
    model (``models:/``, ``runs:/``); ``backbone`` None (or a dict without a config name or checkpoint) takes the
    backbone the prompts record. Without ``class_name`` the error lists the classes the prompts have."""
    check_separate_options(input_path, output_path, chunk_seconds, overlap)
    use_available_cores()
    separator = load_separator(prompts_uri, backbone, tracking_uri=tracking_uri)
    return separate_file(separator, class_name, input_path, output_path, chunk_seconds, overlap)


def _read_evaluation(path: str, system: str) -> tuple[pd.DataFrame, dict]:
    folder = Path(path)
    try:
        info = json.loads((folder / "evaluation.json").read_text())
        table = pd.read_csv(folder / "per_mixture.csv", keep_default_na=False)  # "NA" may be a class name
    except (OSError, ValueError) as exc:
        raise AptUssError(f"{path} is not an evaluation output (per_mixture.csv, evaluation.json): {exc}") from None
    if info.get("system") != system:
        raise AptUssError(f"{path} holds the {info.get('system')!r} evaluation where {system!r} was expected")
    for column in [c for c in table.columns if c in SCORES or c.startswith(SCORE_PREFIXES)]:
        # An empty score cell is a score that is not defined (the SI-SDR of a silent estimate): NaN, which medians
        # skip. Any other text is not a score.
        scores = pd.to_numeric(table[column], errors="coerce")
        bad = table[column][scores.isna() & ~table[column].astype(str).isin(["", "nan"])]
        if len(bad):
            raise AptUssError(f"{path}: per_mixture.csv column {column!r} holds {bad.iloc[0]!r}, not a score")
        table[column] = scores
    return table, info


def score_systems(baseline_dir: str, apt_dir: str) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The two evaluations side by side: (per mixture, per class, summary of the headline numbers)."""
    baseline, b_info = _read_evaluation(baseline_dir, "baseline")
    apt, a_info = _read_evaluation(apt_dir, "apt")
    try:
        per_mixture = compare_systems(baseline, apt)
    except ValueError as exc:
        raise AptUssError(str(exc)) from None
    units = per_track_medians(per_mixture)
    per_class = median_sdr_by_class(units)
    counts = {"n_skipped_silent_reference": b_info["n_skipped_silent_reference"],
              "n_silent_estimate_baseline": b_info["n_silent_estimate"],
              "n_silent_estimate_apt": a_info["n_silent_estimate"]}
    return per_mixture, per_class, summarise(units, per_class, counts)


FIGURES = {"class_gains.png": "Median SDR per class, baseline vs APT, sorted by gain",
           "prompt_map.png": "Clip embeddings with initial and tuned prompts (PCA)",
           "tune_loss.png": "Prompt tuning loss per epoch",
           "example_spectrograms.png": "Spectrograms of a typical audio example: mixture, reference, baseline, APT"}


def report_title(params: dict) -> str:
    """What a report is about, in its title: dataset, shots and backbone."""
    shots = str(params.get("n_shot", "?"))
    shots = "full data" if shots == "full" else f"{shots}-shot"
    return f"APT vs baseline on {params.get('dataset', '?')}, {shots}, {params.get('backbone', '?')} backbone"


def _report_figures(folder: Path, per_class: pd.DataFrame, loss: pd.DataFrame, initial_prompts_path: str,
                    tuned_prompts_path: str, embeddings_path: str, loss_function: str,
                    examples: pd.DataFrame | None = None, examples_dir: str = "") -> dict[str, Path]:
    """Draw the run's figures into ``folder/figures``; returns caption -> path."""
    out = folder / "figures"
    drawn = {"class_gains.png": plots.plot_class_gains(per_class, out / "class_gains.png")}
    if embeddings_path:
        clips, clip_targets = load_embeddings(embeddings_path)
        initial, targets, names = load_prompts(initial_prompts_path)
        tuned, _, _ = load_prompts(tuned_prompts_path)
        drawn["prompt_map.png"] = plots.plot_prompt_map(clips, clip_targets, initial, tuned, targets, names,
                                                        out / "prompt_map.png")
    if len(loss):
        drawn["tune_loss.png"] = plots.plot_tune_loss(loss, out / "tune_loss.png", loss_function)
    if examples is not None and len(examples):
        drawn["example_spectrograms.png"] = plots.plot_example_spectrograms(examples, examples_dir,
                                                                            out / "example_spectrograms.png")
    return {FIGURES[name]: path for name, path in drawn.items()}


def report_step(baseline_dir: str, apt_dir: str, initial_prompts_path: str, tuned_prompts_path: str,
                loss_path: str, out_report: str, run_params: dict | None = None, run_name: str = "apt-uss",
                tracking_uri: str = "", experiment: str = DEMO["experiment"], artifact_uri: str = "",
                embeddings_path: str = "", examples_dir: str = "", out_html: str = "",
                model_name: str = DEMO["model_name"], kfp_run_id: str = "") -> dict:
    """Baseline vs APT tables, headline numbers, figures and an HTML page; record them in MLflow and
    upload them to S3; log the tuned prompts as the run's model and register it (``model_name``: the registry
    name; empty: ``apt-uss-<dataset>``; ``none``: not registered).

    ``embeddings_path`` (from init-prompts) adds the prompt map; ``examples_dir`` (from
    audio-examples) adds the WAVs and their players. The page is ``report.html`` in the
    report folder, and also ``out_html`` where given (the KFP UI's HTML artifact).
    ``artifact_uri`` empty skips the S3 upload; ``tracking_uri`` empty means
    ``$MLFLOW_TRACKING_URI`` or the local sqlite store.
    """
    run_params = tracking.recorded_values(run_params or {})
    per_mixture, per_class, summary = score_systems(baseline_dir, apt_dir)
    loss = read_table(loss_path, "the tuning loss table", LOSS_COLUMNS, keep_default_na=True)
    for path in (initial_prompts_path, tuned_prompts_path):  # every input is read before MLflow and S3 are
        load_prompts(path)
    if embeddings_path:
        load_embeddings(embeddings_path)
    examples = read_table(Path(examples_dir) / EXAMPLES_TABLE, "the audio examples table") if examples_dir else None
    uri = tracking.resolve_tracking_uri(tracking_uri)
    tracking.check_tracking(uri)
    if artifact_uri:
        storage.ensure_bucket(artifact_uri)
    with atomic_path(out_report) as tmp:
        tmp.mkdir()
        per_mixture.to_csv(tmp / "per_mixture.csv", index=False)
        per_class.to_csv(tmp / "per_class.csv", index=False)
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2))
        shutil.copyfile(initial_prompts_path, tmp / "prompts_initial.npz")
        shutil.copyfile(tuned_prompts_path, tmp / "prompts_tuned.npz")
        shutil.copyfile(loss_path, tmp / "tune_loss.csv")
        if examples_dir:
            shutil.copytree(examples_dir, tmp / "examples")
        figures = _report_figures(tmp, per_class, loss, initial_prompts_path, tuned_prompts_path, embeddings_path,
                                  str((run_params or {}).get("loss_function", "l1")), examples, str(tmp / "examples"))
        title = report_title(run_params or {})
        write_html_report(tmp / "report.html", summary, per_class, figures, examples, tmp / "examples",
                          title=title, params=run_params, run_name=run_name)
        if out_html:  # the KFP UI shows the page alone: no folder beside it, so no links to the WAVs
            write_html_report(out_html, summary, per_class, figures, examples, tmp / "examples", title=title,
                              params=run_params, run_name=run_name, wav_links=False)
        files = {p.relative_to(tmp).as_posix(): p for p in sorted(tmp.rglob("*")) if p.is_file()}
        s3_uris = storage.upload_run_files(artifact_uri, run_name, files) if artifact_uri else {}
        params = dict(run_params or {})
        params["sdr_definition"] = SDR_DEFINITION
        # Provenance: runs on other weights, data or code must not be mixed in one table (results.sweep).
        provenance = {**load_prompt_provenance(tuned_prompts_path), **code_provenance()}
        params.update({f"{PROVENANCE_PREFIX}{k}": v for k, v in provenance.items()})
        tags = {"dataset": str(params.get("dataset", "")), "n_shot": str(params.get("n_shot", "")),
                "backbone": str(params.get("backbone", "")), "tune": str(params.get("tune", "prompts"))}
        s3_prefix = s3_uris["summary.json"].rsplit("/", 1)[0] + "/" if s3_uris else ""
        if s3_prefix:
            tags["s3_artifacts"] = s3_prefix
        tags.update(tracking.kfp_tag(kfp_run_id))
        metrics = {**summary, **tracking.per_class_metrics(per_class)}
        # The run stays open until its model is registered: a retry after a failed registration finds it again.
        run_id = tracking.log_run(uri, experiment, run_name, params, metrics, loss_history=loss,
                                  artifacts_dir=tmp, tags=tags, finish=False)
        try:
            tracking.set_description(uri, run_id, tracking.run_description(run_id, summary, params))
            if params.get("tune", "prompts") == "joint":  # the prompts belong to a tuned separator
                model = {}
                log.info("tune=joint: the tuned prompts are not logged as a model (they need the jointly tuned "
                         "separator)")
            else:
                model = log_prompt_model(uri, run_id, tmp / "prompts_tuned.npz",
                                         registered_model_name(model_name, str(params.get("dataset", "run"))))
        except Exception:
            tracking.end_run(uri, run_id, "FAILED")
            raise
        tracking.end_run(uri, run_id)
        record = {"mlflow_run_id": run_id, "mlflow_tracking_uri": tracking.redact(uri),
                  "experiment": experiment, "run_name": run_name, "s3": s3_uris, "s3_prefix": s3_prefix,
                  "provenance": provenance, "model": model}
        (tmp / "run.json").write_text(json.dumps(record, indent=2))
    return {"summary": summary, "per_class": per_class, "run": record}
