"""Parsing and checks of single parameter values, each with one error line naming the parameter and what is allowed.

The checks that need to know a dataset or a backbone (a run's whole parameter set) are in
``apt_uss.steps.validation``."""

from __future__ import annotations

import math
import re

from apt_uss.errors import AptUssError
from apt_uss.params.spec import check_choice

FULL = "full"


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
    return check_choice("dataset", name)


def check_sha256(value: str, name: str = "dataset_sha256") -> str:
    """Empty (no checksum known) or 64 hex digits."""
    text = str(value).strip().lower()
    if text and (len(text) != 64 or any(c not in "0123456789abcdef" for c in text)):
        raise AptUssError(f"{name}={value!r} is not valid: use 64 hex digits, or leave it empty")
    return text


def check_device(name: str) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (whether a CUDA device is visible is the steps' to say)."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", str(name)):
        raise AptUssError(f"device={name!r} is not valid: use 'auto', 'cpu' or 'cuda[:N]'")
    return str(name)


def check_gpu_count(name: str, value: object) -> str:
    """A pod's GPU count: a whole number, 0 or more, as the text Kubeflow reads it from ("01" -> "1")."""
    text = str(value).strip()
    if not text.isdigit():
        raise AptUssError(f"{name}={value!r} is not valid: use a whole number of GPUs, 0 or more")
    return str(int(text))


def check_mix_rule(rule: str) -> str:
    return check_choice("mix_rule", rule)


def check_crop_rule(rule: str) -> str:
    return check_choice("crop_rule", rule)


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


def _integer_from(name: str, value: object, lowest: int, allowed: str) -> int:
    """``value`` as an integer of at least ``lowest``, else one error line naming ``name`` and ``allowed``."""
    try:
        ok = float(value).is_integer() and int(value) >= lowest
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise AptUssError(f"{name}={value!r} is not valid: use {allowed}")
    return int(value)


def check_seed(name: str, value: object) -> int:
    """Seeds feed numpy's generators, which take integers from 0 up."""
    return _integer_from(name, value, 0, "an integer from 0 up")


def check_own_seed(name: str, value: object) -> int:
    """A purpose's own seed: an integer from 0 up, or -1 for the run's ``seed``."""
    return _integer_from(name, value, -1, "an integer from 0 up, or -1 for the run's seed")


def check_validation_clips(value: object) -> int:
    """Held-out clips per class: an integer from 0 (no validation split) up."""
    return _integer_from("validation_clips", value, 0, "0 (no validation split) or more")


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


def _items(value: object) -> list[str]:
    """The words of a list parameter: separated by commas or spaces (``1,5,10`` and ``1 5 10`` alike)."""
    return [w for w in str(value).replace(",", " ").split() if w]


def parse_sweep_shots(value: object) -> list[str]:
    """The sweep's n_shot values (``"1,5,10,full"``), each written as ``n_shot`` is normalised (``05`` -> ``5``),
    in the given order, no repeats."""
    items = []
    for word in _items(value):
        try:
            shot = parse_n_shot(word)
        except AptUssError:
            raise AptUssError(f"sweep_shots={value!r} is not valid: {word!r} is not a positive integer or "
                              "'full'") from None
        items.append(FULL if shot is None else str(shot))
    if not items:
        raise AptUssError(f"sweep_shots={value!r} is not valid: use n_shot values such as '1,5,10,full'")
    repeated = sorted({i for i in items if items.count(i) > 1})
    if repeated:
        raise AptUssError(f"sweep_shots={value!r} is not valid: {', '.join(repeated)} given twice")
    return items


def parse_seeds(value: object) -> list[int]:
    """The sweep's seeds: ``"N"`` is the seeds 1 to N (seed 0 is the selection seed of ``make select-settings``);
    a list of two or more (``"4,5,6"``) names them."""
    words = _items(value)
    if len(words) == 1:
        count = _integer_from("seeds", words[0], 1, "a count of seeds (1 or more) or a list such as '4,5,6'")
        return list(range(1, count + 1))
    if not words:
        raise AptUssError(f"seeds={value!r} is not valid: use a count of seeds (1 or more) or a list such as '4,5,6'")
    seeds = [_integer_from("seeds", w, 0, "a list of seeds from 0 up, such as '4,5,6'") for w in words]
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise AptUssError(f"seeds={value!r} is not valid: seed {', '.join(map(str, repeated))} given twice")
    return seeds


def check_tune_options(mode: str, precision: str, lr_schedule: str = "constant", loss_function: str = "l1") -> None:
    """What tunes (``tune``), in which precision, on which lr schedule and loss: each one of the spec's choices."""
    for name, value in (("tune", mode), ("precision", precision), ("lr_schedule", lr_schedule),
                        ("loss_function", loss_function)):
        check_choice(name, value)


def check_state_uri(uri: str) -> None:
    """Where tuning keeps its per-epoch state: empty, a folder path, file:// or s3://."""
    if uri and not (uri.startswith(("s3://", "file://", "/")) or "://" not in uri):
        raise AptUssError(f"checkpoint_uri={uri!r} is not valid: use a folder path, file:// or s3://<bucket>/<prefix>")
