"""Parsing and validation of the parameters a user sets (CLI, Makefile, pipeline)."""

from __future__ import annotations

from .errors import AptUssError

FULL = "full"
DATASETS = ("synthetic", "esc50", "musdb18")
MIX_RULES = ("energy_match", "sum")
# Where a training crop starts: "random" (uniform, the paper's) or "loud" (the loudest of a few uniform
# starts, as the demo backbone was trained, so few targets are near-silent crops of a clip's quiet part).
CROP_RULES = ("random", "loud")


def parse_n_shot(value: object) -> int | None:
    """Return the number of training clips per class, or None for the full set.

    Accepts a positive integer (as int or string) or the word ``full``.
    """
    text = str(value).strip().lower()
    if text == FULL:
        return None
    try:
        n = int(text)
    except ValueError:
        raise AptUssError(
            f"n_shot={value!r} is not valid: use a positive integer (1, 5, 10, ...) or 'full'"
        ) from None
    if n <= 0:
        raise AptUssError(
            f"n_shot={value!r} is not valid: it must be at least 1, or 'full'"
        )
    return n


def parse_folds(value: object, name: str = "folds") -> list[int]:
    """Parse a fold list such as ``"1,2,3"`` or ``[4, 5]``."""
    if isinstance(value, (list, tuple)):
        items = [str(v) for v in value]
    else:
        items = [p for p in str(value).replace(" ", "").split(",") if p]
    try:
        folds = [int(p) for p in items]
    except ValueError:
        raise AptUssError(f"{name}={value!r} is not valid: use fold numbers such as '1,2,3'") from None
    if not folds or any(f <= 0 for f in folds):
        raise AptUssError(f"{name}={value!r} is not valid: use positive fold numbers such as '1,2,3'")
    return sorted(set(folds))


def check_dataset(name: str) -> str:
    if name not in DATASETS:
        raise AptUssError(f"dataset={name!r} is unknown: allowed are {', '.join(DATASETS)}")
    return name


def check_sha256(value: str, name: str = "dataset_sha256") -> str:
    """Empty (no checksum known) or 64 hex digits."""
    text = str(value).strip().lower()
    if text and (len(text) != 64 or any(c not in "0123456789abcdef" for c in text)):
        raise AptUssError(f"{name}={value!r} is not valid: use 64 hex digits, or leave it empty")
    return text


def check_mix_rule(rule: str) -> str:
    if rule not in MIX_RULES:
        raise AptUssError(f"mix_rule={rule!r} is unknown: allowed are {', '.join(MIX_RULES)}")
    return rule


def check_crop_rule(rule: str) -> str:
    if rule not in CROP_RULES:
        raise AptUssError(f"crop_rule={rule!r} is unknown: allowed are {', '.join(CROP_RULES)}")
    return rule


def check_positive(name: str, value: float, integer: bool = False) -> float:
    if integer and (not float(value).is_integer()):
        raise AptUssError(f"{name}={value!r} is not valid: it must be a positive integer")
    if value <= 0:
        raise AptUssError(f"{name}={value!r} is not valid: it must be positive")
    return value


def check_pipeline_params(params: dict) -> dict:
    """Every user value of a pipeline run, checked before any step (local or cluster); no network.

    Returns the parameters with ``n_shot`` normalised ("Full " -> "full").
    """
    from .data import musdb, synthetic
    from .models import get_config
    from .models.backbone import PACKAGED_WEIGHTS, packaged_checkpoint_uri
    from .resume import check_state_uri
    from .tuning import check_tune_options

    check_dataset(params["dataset"])
    check_mix_rule(params["mix_rule"])
    check_crop_rule(params["crop_rule"])
    check_tune_options(params["tune"], params["precision"], params["lr_schedule"],
                       params["loss_function"])
    check_state_uri(params["checkpoint_uri"])
    check_sha256(params["dataset_sha256"])
    if params["dataset"] == "musdb18" and not params["dataset_uri"]:
        raise AptUssError("dataset=musdb18 needs dataset_uri: a MUSDB18 or MUSDB18-HQ root folder or archive")
    get_config(params["backbone"])
    if params["backbone"] in PACKAGED_WEIGHTS and not (params["sed_checkpoint_uri"] or params["separator_checkpoint_uri"]):
        packaged_checkpoint_uri(params["backbone"])  # the shipped weights must be there
    for name in ("epochs", "batch_size"):
        check_positive(name, params[name], integer=True)
    for name in ("lr", "crop_seconds"):
        check_positive(name, params[name])
    if params["audio_examples_per_class"] < 0:
        raise AptUssError(f"audio_examples_per_class={params['audio_examples_per_class']} is not valid: "
                          "use 0 (none) or more")
    if params.get("tune_gpus", 0) < 0:
        raise AptUssError(f"tune_gpus={params['tune_gpus']} is not valid: use 0 or more")
    n_shot = parse_n_shot(params["n_shot"])
    train_folds = parse_folds(params["train_folds"], "train_folds")
    parse_folds(params["test_folds"], "test_folds")
    if n_shot is not None:
        if params["dataset"] == "musdb18":
            limit, what = musdb.OFFICIAL_TRACKS["train"], "training tracks"
        else:  # ESC-50's shape (and the synthetic set's): 8 clips per class in each fold
            limit, what = synthetic.CLIPS_PER_FOLD * len(train_folds), "training clips per class"
        if n_shot > limit:
            raise AptUssError(
                f"n_shot={params['n_shot']} is larger than the {limit} {what} of "
                f"{params['dataset']}: use 1 to {limit} or 'full'"
            )
    return dict(params, n_shot=str(params["n_shot"]).strip().lower())
