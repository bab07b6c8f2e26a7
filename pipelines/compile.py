"""Compile the pipeline to KFP IR YAML: ``python -m pipelines.compile [--out PATH] [--profile demo|paper]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from kfp import compiler

from apt_uss.params import spec
from pipelines.apt_uss_pipeline import build_pipeline


def compile_pipeline(out: str | Path, profile: str = spec.DEFAULT_PROFILE) -> Path:
    """Write the pipeline whose parameters default to ``profile``'s values (what a Kubeflow UI run starts with)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(build_pipeline(profile), str(out))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="dist/apt_uss_pipeline.yaml")
    parser.add_argument("--profile", default=spec.DEFAULT_PROFILE, choices=list(spec.PROFILES),
                        help="the parameters' defaults in the compiled pipeline (default: %(default)s)")
    args = parser.parse_args()
    print(compile_pipeline(args.out, args.profile))


if __name__ == "__main__":
    main()
