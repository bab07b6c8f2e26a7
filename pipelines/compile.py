"""Compile the pipeline to KFP IR YAML: ``python -m pipelines.compile [--out PATH]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from kfp import compiler

from pipelines.apt_uss_pipeline import apt_uss_pipeline


def compile_pipeline(out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(apt_uss_pipeline, str(out))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="dist/apt_uss_pipeline.yaml")
    print(compile_pipeline(parser.parse_args().out))


if __name__ == "__main__":
    main()
