"""Parsing and validation of the parameters a user sets (CLI, Makefile, pipeline)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import AptUssError

FULL = "full"
DATASETS = ("synthetic", "esc50", "musdb18")
MIX_RULES = ("energy_match", "sum")
# Where a training crop starts: "random" (uniform, the paper's) or "loud" (the loudest of a few uniform
# starts, as the demo backbone was trained, so few targets are near-silent crops of a clip's quiet part).
CROP_RULES = ("random", "loud")


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
    from .data import synthetic

    if dataset == "synthetic":
        return KnownLayout(synthetic.FOLDS, synthetic.CLIPS_PER_FOLD, synthetic.CLIP_SECONDS)
    if dataset == "esc50" and not dataset_uri:
        return ESC50_LAYOUT
    return None


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


def _finite_number(name: str, value: object, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise AptUssError(f"{name}={value!r} is not valid: it must be {what}") from None
    if not math.isfinite(number):
        raise AptUssError(f"{name}={value!r} is not valid: it must be {what} (not nan or inf)")
    return number


def check_finite(name: str, value: object) -> float:
    """A number that is not nan or inf (which would train to nan, or fail to serialise as a pipeline parameter)."""
    return _finite_number(name, value, "a finite number")


def check_positive(name: str, value: float, integer: bool = False) -> float:
    number = _finite_number(name, value, "a positive integer" if integer else "a finite positive number")
    if integer and (not number.is_integer()):
        raise AptUssError(f"{name}={value!r} is not valid: it must be a positive integer")
    if number <= 0:
        raise AptUssError(f"{name}={value!r} is not valid: it must be positive")
    return value


def check_seed(name: str, value: object) -> int:
    """Seeds feed numpy's generators, which take integers from 0 up."""
    try:
        ok = float(value).is_integer() and int(value) >= 0
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise AptUssError(f"{name}={value!r} is not valid: use an integer from 0 up")
    return int(value)


def check_disjoint_folds(train_folds: list[int], test_folds: list[int], train_text: object = None,
                         test_text: object = None) -> None:
    overlap = sorted(set(train_folds) & set(test_folds))
    if overlap:
        train_text = train_folds if train_text is None else train_text
        test_text = test_folds if test_text is None else test_text
        raise AptUssError(f"train_folds={train_text!r} and test_folds={test_text!r} share fold(s) "
                          f"{', '.join(map(str, overlap))}: a fold is for training or for testing, not both")


def crop_samples(crop_seconds: float, sample_rate: int) -> int:
    """The crop in samples, as the mixture simulation step rounds it."""
    return int(round(crop_seconds * sample_rate))


def check_crop_fits(crop_seconds: float, clip_samples: dict, sample_rate: int, what: str = "training clip") -> None:
    """Refuse a crop longer than the shortest of ``clip_samples`` (name -> length in samples)."""
    if not len(clip_samples):
        return
    name = min(clip_samples, key=lambda k: (clip_samples[k], str(k)))
    shortest = int(clip_samples[name])
    if crop_samples(crop_seconds, sample_rate) > shortest:
        seconds = math.floor(shortest / sample_rate * 1000) / 1000
        raise AptUssError(f"crop_seconds={crop_seconds!r} is longer than the shortest {what}, {name} "
                          f"({seconds:g} s): use a crop of at most {seconds:g} s")


def check_pipeline_params(params: dict) -> dict:
    """Every user value of a pipeline run, checked before any step (local or cluster); no network.

    Returns the parameters with ``n_shot`` normalised ("Full " -> "full").
    """
    from .data import musdb, synthetic
    from .data.audio import SAMPLE_RATE
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
    for name, value in params.items():  # any other float parameter too: nan and inf fail in KFP
        if isinstance(value, float):
            check_finite(name, value)
    check_seed("seed", params["seed"])
    if params["dataset"] == "synthetic" and "n_classes" in params \
            and not 2 <= int(params["n_classes"]) <= synthetic.MAX_CLASSES:
        raise AptUssError(f"n_classes={params['n_classes']!r} is not valid: use 2 to {synthetic.MAX_CLASSES} "
                          "(mixtures need two classes)")
    if params["audio_examples_per_class"] < 0:
        raise AptUssError(f"audio_examples_per_class={params['audio_examples_per_class']} is not valid: "
                          "use 0 (none) or more")
    if params.get("tune_gpus", 0) < 0:
        raise AptUssError(f"tune_gpus={params['tune_gpus']} is not valid: use 0 or more")
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
    if n_shot is not None:
        limit = None
        if params["dataset"] == "musdb18":
            limit, what = musdb.OFFICIAL_TRACKS["train"], "training tracks"
        elif layout is not None:  # a user's own data may have more clips per class: the split step counts them
            limit, what = layout.clips_per_fold * len(train_folds), "training clips per class"
        if limit is not None and n_shot > limit:
            raise AptUssError(
                f"n_shot={params['n_shot']} is larger than the {limit} {what} of "
                f"{params['dataset']}: use 1 to {limit} or 'full'"
            )
    return dict(params, n_shot=str(params["n_shot"]).strip().lower())
