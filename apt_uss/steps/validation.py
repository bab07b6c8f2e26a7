"""The check of a run's whole parameter set against the spec (``apt_uss.params.spec``) and what is known of
its dataset and backbone, before any step runs: the pipeline's first task, and ``run_local`` and
``submit`` before they start a run."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from apt_uss.data import debian_sounds, musdb, synthetic
from apt_uss.data.audio import SAMPLE_RATE
from apt_uss.errors import AptUssError
from apt_uss.io.uris import uri_path
from apt_uss.models.choice import BackboneChoice
from apt_uss.params.checks import (
    check_crop_rule,
    check_dataset,
    check_device,
    check_disjoint_folds,
    check_finite,
    check_gpu_count,
    check_mix_rule,
    check_own_seed,
    check_positive,
    check_seed,
    check_sha256,
    check_state_uri,
    check_tune_options,
    check_validation_clips,
    crop_samples,
    parse_folds,
    parse_n_shot,
    parse_seeds,
    parse_sweep_shots,
)
from apt_uss.params.spec import (
    BACKBONE_PARAMETERS,
    BY_NAME,
    CHECKED_PARAMETERS,
    PER_CELL,
    SWEEP_CHECKED_PARAMETERS,
    check_choice,
    closest_name,
    parse_value,
)

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class KnownLayout:
    """What is known of a dataset before it is fetched: its folds, clips per class in each fold, clip length."""

    folds: int
    clips_per_fold: int
    clip_seconds: float


# The official ESC-50 (fetched when no dataset_uri is given): 50 classes x 5 folds x 8 clips of 5 s.
ESC50_LAYOUT = KnownLayout(folds=5, clips_per_fold=8, clip_seconds=5.0)


def known_layout(dataset: str, dataset_uri: str = "") -> KnownLayout | None:
    """The layout of ``dataset`` where it is fixed: the built-in synthetic set and the official ESC-50.

    A user's own data (any ``dataset_uri``) is only known once fetched: the steps that read it check it.
    """
    if dataset == "synthetic":
        return KnownLayout(synthetic.FOLDS, synthetic.CLIPS_PER_FOLD, synthetic.CLIP_SECONDS)
    if dataset == "esc50" and not dataset_uri:
        return ESC50_LAYOUT
    if dataset == "debian_sounds" and not dataset_uri:
        return KnownLayout(debian_sounds.FOLDS, debian_sounds.CLIPS_PER_FOLD, debian_sounds.CLIP_SECONDS)
    return None



def check_pipeline_params(params: dict) -> dict:
    """Every user value of a pipeline run, checked before any step (local or cluster); no network.

    Returns the parameters with ``n_shot`` normalised ("Full " -> "full").
    """
    params = typed_parameters(params)
    check_dataset(params["dataset"])
    check_device(params["device"])
    check_mix_rule(params["mix_rule"])
    check_crop_rule(params["crop_rule"])
    check_tune_options(params["tune"], params["precision"], params["lr_schedule"],
                       params["loss_function"])
    check_state_uri(params["checkpoint_uri"])
    check_sha256(params["dataset_sha256"])
    if params["dataset"] == "musdb18" and not params["dataset_uri"]:
        raise AptUssError("dataset=musdb18 needs dataset_uri: a MUSDB18 or MUSDB18-HQ root folder or archive")
    BackboneChoice.of({k: params[k] for k in BACKBONE_PARAMETERS}).check_weights()
    for name in ("epochs", "batch_size"):
        check_positive(name, params[name], integer=True)
    for name in ("lr", "crop_seconds"):
        check_positive(name, params[name])
    for name, value in params.items():  # any other float parameter too: nan and inf fail in KFP
        if isinstance(value, float):
            check_finite(name, value)
    for name in ("backbone_seed",):
        check_seed(name, params[name])
    for name in ("shot_seed", "mix_seed"):
        check_own_seed(name, params[name])
    check_seed("seed", params["seed"])
    if params["dataset"] == "synthetic" and "n_classes" in params \
            and not 2 <= int(params["n_classes"]) <= synthetic.MAX_CLASSES:
        raise AptUssError(f"n_classes={params['n_classes']!r} is not valid: use 2 to {synthetic.MAX_CLASSES} "
                          "(mixtures need two classes)")
    if params.get("audio_examples_per_class", 0) < 0:  # the sweep renders none
        raise AptUssError(f"audio_examples_per_class={params['audio_examples_per_class']} is not valid: "
                          "use 0 (none) or more")
    model_name = str(params.get("model_name", ""))
    if any(c in model_name for c in "/:%?#") or model_name != model_name.strip():
        raise AptUssError(f"model_name={model_name!r} is not valid: a registry name without '/', ':', '%', '?', "
                          "'#' or surrounding spaces (it goes into models:/<name>/<version> URIs)")
    for name in GPU_COUNTS:
        params[name] = check_gpu_count(name, params.get(name, "0"))
    n_shot = parse_n_shot(params["n_shot"])
    train_folds = parse_folds(params["train_folds"], "train_folds")
    test_folds = parse_folds(params["test_folds"], "test_folds")
    layout = known_layout(params["dataset"], params["dataset_uri"])
    if params["dataset"] != "musdb18":  # MUSDB18 has its official train/test subsets; the folds are not used
        check_disjoint_folds(train_folds, test_folds, params["train_folds"], params["test_folds"])
    if layout is not None:  # the steps check a user's own data once they have read it
        for name, folds in (("train_folds", train_folds), ("test_folds", test_folds)):
            outside = [f for f in folds if f > layout.folds]
            if outside:
                raise AptUssError(f"{name}={params[name]!r} is not valid: {params['dataset']} has folds 1 to "
                                  f"{layout.folds}, not {', '.join(map(str, outside))}")
        if crop_samples(params["crop_seconds"], SAMPLE_RATE) > crop_samples(layout.clip_seconds, SAMPLE_RATE):
            raise AptUssError(f"crop_seconds={params['crop_seconds']!r} is longer than the {layout.clip_seconds:g}-s "
                              f"clips of {params['dataset']}: use a crop of at most {layout.clip_seconds:g} s")
    held = check_validation_clips(params["validation_clips"])
    if params["keep_best_epoch"] and params["tune"] == "joint":
        raise AptUssError("keep_best_epoch=true is for tune=prompts: tune=joint would pair the best epoch's prompts "
                          "with the last epoch's separator")
    if params["keep_best_epoch"] and not held:
        raise AptUssError("keep_best_epoch=true needs validation_clips of 1 or more: the epoch is chosen on them")
    if held and params["dataset"] == "musdb18":
        raise AptUssError("validation_clips is for ESC-50-layout datasets: MUSDB18 has no held-out tracks here")
    if held and layout is not None and held >= layout.clips_per_fold * len(train_folds):
        raise AptUssError(f"validation_clips={held} leaves no training clip: {params['dataset']} has "
                          f"{layout.clips_per_fold * len(train_folds)} per class in train_folds")
    if n_shot is not None:
        limit = None
        if params["dataset"] == "musdb18":
            limit, what = musdb.OFFICIAL_TRACKS["train"], "training tracks"
        elif layout is not None:  # a user's own data may have more clips per class: the split step counts them
            limit = layout.clips_per_fold * len(train_folds) - held
            what = "training clips per class" + (f" not held out for validation ({held})" if held else "")
        if limit is not None and n_shot > limit:
            raise AptUssError(
                f"n_shot={params['n_shot']} is larger than the {limit} {what} of "
                f"{params['dataset']}: use 1 to {limit} or 'full'"
            )
    return dict(params, n_shot=str(params["n_shot"]).strip().lower())


GPU_COUNTS = ("tune_gpus", "model_gpus")  # text, as Kubeflow reads a pod's GPU count
LOCAL_INPUTS = ("dataset_uri", "sed_checkpoint_uri", "separator_checkpoint_uri")


def check_local_inputs(params: dict) -> None:
    """The inputs a run on this machine names by path (or ``file://``) exist here. Not part of the pipeline's own
    check: on a cluster that runs in one pod, and another pod may mount other volumes."""
    for name in LOCAL_INPUTS:
        uri = str(params.get(name) or "")
        # A checkpoint URI may end in #sha256=<hex>; a dataset path has no pin (its folder may hold a #).
        path = uri_path(uri.split("#", 1)[0] if name.endswith("checkpoint_uri") else uri) if uri else None
        if path is not None and not path.exists():
            raise AptUssError(f"{name}={uri!r}: {path} does not exist on this machine")


def check_sweep_params(params: dict) -> dict:
    """A sweep's parameters (``apt_uss.params.spec.SWEEP_PARAMETERS``), checked as every one of its cells would be.

    Returns them with ``sweep_shots`` and ``seeds`` normalised ("1, 5,Full" -> "1,5,full"; "3" -> "1,2,3").
    """
    params = typed_parameters(params)
    given = sorted(set(params) & set(PER_CELL))
    if given:
        raise AptUssError(f"{', '.join(given)}: the sweep sets these per cell (n_shot from sweep_shots, shot_seed and "
                          "mix_seed from seeds, no audio examples); leave them out")
    shots = parse_sweep_shots(params["sweep_shots"])
    seeds = parse_seeds(params["seeds"])
    if params["dataset"] == "musdb18":
        raise AptUssError("the sweep is for ESC-50-layout datasets (synthetic, debian_sounds, esc50): "
                          "run MUSDB18 with "
                          "make pipeline-run")
    for shot in shots:
        try:
            cell = check_pipeline_params({**{k: v for k, v in params.items() if k not in ("sweep_shots", "seeds")},
                                          "n_shot": shot, "shot_seed": seeds[0], "mix_seed": seeds[0]})
        except AptUssError as exc:
            raise AptUssError(f"sweep_shots={params['sweep_shots']!r}, cell n_shot={shot}: {exc}") from None
    return dict(params, sweep_shots=",".join(shots), seeds=",".join(map(str, seeds)),
                **{name: cell[name] for name in GPU_COUNTS})  # as the cells' check normalised them


def typed_parameters(params: dict) -> dict:
    """Each value as its parameter's type (from text, as KFP hands values inside a dict), and one of its
    allowed values; an unknown name is refused with the closest known one."""
    typed = {}
    for name, value in params.items():
        if name not in BY_NAME:
            raise AptUssError(f"{name!r} is not a pipeline parameter{closest_name(name)}")
        typed[name] = check_choice(name, parse_value(name, value))
    return typed


def validate_parameters_step(params: dict, pipeline: str = "run") -> dict:
    """The pipeline's first task: every value checked before any data moves or a GPU is asked for,
    also for a run started or edited in the Kubeflow UI (run_local and submit check the same way
    before they start a run). Returns the checked parameters."""
    expected = SWEEP_CHECKED_PARAMETERS if pipeline == "sweep" else CHECKED_PARAMETERS
    missing = [k for k in expected if k not in params]
    if missing:
        raise AptUssError(f"the parameters lack {', '.join(missing)}: give every pipeline parameter the check reads")
    checked = check_sweep_params(params) if pipeline == "sweep" else check_pipeline_params(params)
    log.info("parameters checked: %d values", len(checked))
    return checked
