"""What the local runners (``run_local``, ``run_backbone``) share: flags from a pipeline's signature, and
one readable line for a failed task."""

from __future__ import annotations

import argparse
import inspect
import re


def pipeline_defaults(pipeline) -> dict:
    """The pipeline's parameters and their defaults, in signature order."""
    return {name: p.default for name, p in inspect.signature(pipeline.pipeline_func).parameters.items()}


def add_pipeline_flags(parser: argparse.ArgumentParser, pipeline) -> None:
    """One ``--kebab-case`` flag per pipeline parameter, typed and defaulted as the pipeline declares it."""
    for name, default in pipeline_defaults(pipeline).items():
        kind = type(default) if default is not None else str
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, default=default, type=kind,
                            help=f"default: {default!r}")


def failed_task_reason(exc: RuntimeError) -> str:
    """kfp.local's RuntimeError for a failed task, as one plain line (its colour codes removed)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    return text.splitlines()[0] if text else "a task failed"
