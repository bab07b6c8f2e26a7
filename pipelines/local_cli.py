"""What the local runners (``run_local``, ``run_backbone``) share: flags from a pipeline's signature, and
one readable line for a failed task."""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys

from apt_uss.errors import AptUssError


def pipeline_defaults(pipeline) -> dict:
    """The pipeline's parameters and their defaults, in signature order."""
    return {name: p.default for name, p in inspect.signature(pipeline.pipeline_func).parameters.items()}


def add_pipeline_flags(parser: argparse.ArgumentParser, pipeline) -> None:
    """One ``--kebab-case`` flag per pipeline parameter, typed and defaulted as the pipeline declares it."""
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
