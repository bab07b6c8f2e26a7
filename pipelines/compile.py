"""Compile a pipeline to KFP IR YAML:
``python -m pipelines.compile [--pipeline run|sweep] [--out PATH] [--profile demo|paper] [--parallelism N]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from kfp import compiler

from apt_uss.params import spec
from pipelines.apt_uss_pipeline import build_pipeline
from pipelines.sweep_pipeline import DEFAULT_PARALLELISM, build_sweep_pipeline


def compile_pipeline(out: str | Path, profile: str = spec.DEFAULT_PROFILE, pipeline: str = "run",
                     parallelism: int = DEFAULT_PARALLELISM) -> Path:
    """Write the pipeline (``run``: one run; ``sweep``: Table 2 over seeds, ``parallelism`` cells at once) whose
    parameters default to ``profile``'s values (what a Kubeflow UI run starts with)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    built = build_sweep_pipeline(profile, parallelism) if pipeline == "sweep" else build_pipeline(profile)
    compiler.Compiler().compile(built, str(out))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pipeline", default="run", choices=list(spec.PIPELINES),
                        help="run: one pipeline run; sweep: every n_shot over several seeds (default: %(default)s)")
    parser.add_argument("--out", default="", help="default: dist/apt_uss_pipeline.yaml, or dist/apt_uss_sweep.yaml "
                        "for the sweep")
    parser.add_argument("--parallelism", type=int, default=DEFAULT_PARALLELISM,
                        help="sweep cells at once on the cluster, 0: all (default: %(default)s)")
    parser.add_argument("--profile", default=spec.DEFAULT_PROFILE, choices=list(spec.PROFILES),
                        help="the parameters' defaults in the compiled pipeline (default: %(default)s)")
    args = parser.parse_args()
    out = args.out or ("dist/apt_uss_sweep.yaml" if args.pipeline == "sweep" else "dist/apt_uss_pipeline.yaml")
    print(compile_pipeline(out, args.profile, args.pipeline, args.parallelism))


if __name__ == "__main__":
    main()
