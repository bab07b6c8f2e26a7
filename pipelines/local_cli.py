"""What the local runners and the submission share: a flag per pipeline parameter of the spec, and one
readable line for a failed task."""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys

from apt_uss.errors import AptUssError
from apt_uss.params import spec


class FlagParser(argparse.ArgumentParser):
    """An argument parser whose errors are one ``error:`` line, as the parameter check's: the usage of forty flags
    printed first would bury it."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (--help lists the flags)\n")


def profile_of(argv: list[str] | None) -> str:
    """The ``--profile`` given in ``argv`` (default: the spec's), read before the other flags get their defaults."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--profile", default=spec.DEFAULT_PROFILE)
    return pre.parse_known_args(argv)[0].profile


def add_pipeline_flags(parser: argparse.ArgumentParser, profile: str = spec.DEFAULT_PROFILE,
                       pipeline: str = "run") -> None:
    """``--profile`` and one ``--kebab-case`` flag per parameter of ``pipeline`` (``run`` or ``sweep``) in the
    spec, typed and defaulted as ``profile`` sets it; each value is checked against the spec before a run starts."""
    parser.add_argument("--profile", default=profile, choices=list(spec.PROFILES),
                        help="named parameter set: the defaults of the flags below (default: %(default)s)")
    defaults = spec.defaults(profile)
    for q in spec.parameters_of(pipeline):
        default = defaults[q.name]
        shown = json.dumps(default) if isinstance(default, (list, dict, bool)) else repr(default)
        extra = dict(nargs="?", const=True) if q.type is bool else {}  # --random-weights alone means true
        parser.add_argument(q.flag, dest=q.name, default=default, type=_parse_as(q.name), metavar="|".join(q.choices) if q.choices else q.type.__name__.upper(),
                            help=f"{q.help.replace('%', '%%')} (default: {shown.replace('%', '%%')})", **extra)


def add_show_executor_input_flag(parser: argparse.ArgumentParser) -> None:
    """``--show-executor-input``: the local runners fold the JSON each task's executor logs at its start into one line
    (``apt_uss.logs.executor_input_folded``) unless it is given."""
    parser.add_argument("--show-executor-input", action="store_true",
                        help="print the JSON each task's executor logs at its start (by default one line says how "
                             "many lines it held)")


def _parse_as(name: str):
    def parse(text: str):
        try:
            return spec.parse_value(name, text)
        except AptUssError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = spec.BY_NAME[name].type.__name__
    return parse


def pipeline_defaults(pipeline) -> dict:
    """The pipeline's parameters and their defaults, in signature order."""
    return {name: p.default for name, p in inspect.signature(pipeline.pipeline_func).parameters.items()}


def add_signature_flags(parser: argparse.ArgumentParser, pipeline) -> None:
    """One ``--kebab-case`` flag per parameter of ``pipeline``'s own signature (the backbone pipeline's recipe)."""
    for name, default in pipeline_defaults(pipeline).items():
        kind = type(default) if default is not None else str
        if kind in (list, dict):  # given as JSON, e.g. --gpu-node-selector '{"pool": "a100"}'
            kind = _json_of(kind, name)
        elif kind is bool:  # argparse's bool("false") is True
            kind = _boolean(name)
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, default=default, type=kind,
                            help=f"default: {json.dumps(default) if isinstance(default, (list, dict)) else repr(default)}")


def _json_of(kind: type, name: str):
    def parse(text: str):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise argparse.ArgumentTypeError(f"{name} must be JSON ({kind.__name__}): {exc}") from None
        if not isinstance(value, kind):
            raise argparse.ArgumentTypeError(f"{name} must be a JSON {kind.__name__}, got {type(value).__name__}")
        return value

    parse.__name__ = f"JSON {kind.__name__}"
    return parse


def _boolean(name: str):
    def parse(text: str) -> bool:
        word = text.strip().lower()
        if word in ("true", "yes", "1"):
            return True
        if word in ("false", "no", "0"):
            return False
        raise argparse.ArgumentTypeError(f"{name} must be true or false, got {text!r}")

    parse.__name__ = "true/false"
    return parse


def report_failure(exc: AptUssError | RuntimeError, what: str) -> int:
    """Print one ``error:`` line and return the exit code: 2 for refused input, 1 for a failed task.

    kfp.local raises RuntimeError when a task fails; its first line (colour codes removed) names
    the task, and the task's own log, printed above, gives the cause.
    """
    if isinstance(exc, AptUssError):
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    reason = text.splitlines()[0] if text else "a task failed"
    print(f"error: {what} failed: {reason} (the task's log above gives the cause)", file=sys.stderr)
    return 1
