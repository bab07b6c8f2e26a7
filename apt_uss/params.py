"""Parsing and validation of the parameters a user sets (CLI, Makefile, pipeline)."""

from __future__ import annotations

from .errors import AptUssError

FULL = "full"
DATASETS = ("synthetic", "esc50", "musdb18")
MIX_RULES = ("energy_match", "sum")


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


def check_positive(name: str, value: float, integer: bool = False) -> float:
    if integer and (not float(value).is_integer()):
        raise AptUssError(f"{name}={value!r} is not valid: it must be a positive integer")
    if value <= 0:
        raise AptUssError(f"{name}={value!r} is not valid: it must be positive")
    return value
