"""The compiled KFP IR of a pipeline, for tests that check its DAG."""

from pathlib import Path

import yaml


def dag_tasks(pipeline_func, folder: Path) -> dict:
    """Compile ``pipeline_func`` into ``folder`` and return its root DAG's tasks by name."""
    from kfp import compiler

    out = folder / "pipeline.yaml"
    compiler.Compiler().compile(pipeline_func, str(out))
    spec = next(d for d in yaml.safe_load_all(out.read_text()) if d and "root" in d)
    return spec["root"]["dag"]["tasks"]
