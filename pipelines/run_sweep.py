"""Run the sweep pipeline (Table 2 over several seeds in one KFP run) on this machine with KFP's local runner.

``python -m pipelines.run_sweep [--profile paper] [--sweep-shots 1,5,10,full] [--seeds 3] [--epochs 20 ...]``
(``make sweep SEEDS=3``): every parameter of the sweep pipeline is a flag, defaulting to the profile's value,
and is checked, with the tracking store and S3 probed, before any step runs. ``--parallelism`` cells run at
once (default: one per two CPU cores), each step's torch on its share of the cores (``$APT_USS_THREADS``).
``--runner docker`` runs each step in its image, as ``pipelines.run_local`` does.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from apt_uss.errors import AptUssError
from apt_uss.io.cpus import THREADS_ENV, available_cores
from apt_uss.logs import configure_logging, executor_input_folded
from apt_uss.steps.validation import check_sweep_params
from pipelines.local_cli import FlagParser, add_pipeline_flags, add_show_executor_input_flag, profile_of, report_failure
from pipelines.run_local import RUNNERS, prepare_run, start_local_runner
from pipelines.sweep_pipeline import build_sweep_pipeline

log = logging.getLogger("apt_uss.run_sweep")


def default_parallelism() -> int:
    """One cell at a time per two CPU cores: tuning on fewer than two threads each gains nothing by overlapping."""
    return max(1, available_cores() // 2)


def build_parser(profile: str) -> argparse.ArgumentParser:
    parser = FlagParser(prog="python -m pipelines.run_sweep", description=__doc__,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_pipeline_flags(parser, profile, pipeline="sweep")
    parser.add_argument("--runner", default="subprocess", choices=list(RUNNERS),
                        help="subprocess: steps in this environment; docker: each step in its image")
    parser.add_argument("--parallelism", type=int, default=default_parallelism(),
                        help="cells at once (default: %(default)s on this machine)")
    add_show_executor_input_flag(parser)
    return parser


def print_sweep(folder: Path) -> None:
    print("\n" + (folder / "table2.txt").read_text())
    print("Targets:")
    for t in json.loads((folder / "targets.json").read_text()):
        met = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        print(f"  [{met}] {t['target']}: {t['figures']}")
    run = json.loads((folder / "run.json").read_text())
    print(f"\nMLflow parent run: {run['mlflow_run_id']} (experiment {run['experiment']!r}, "
          f"{len(run['mlflow_child_run_ids'])} child runs) at {run['mlflow_tracking_uri']}")
    if run.get("s3_prefix"):
        print(f"S3 artifacts:      {run['s3_prefix']}")
    print(f"Tables:            {folder}/table2.csv, gain_tests.csv, cells.csv")
    print(f"HTML report:       {folder / 'report.html'}")


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    profile = profile_of(argv)
    args = vars(build_parser(profile).parse_args(argv))
    runner, parallelism = args.pop("runner"), args.pop("parallelism")
    show_executor_input = args.pop("show_executor_input")
    args.pop("profile")
    if parallelism < 0:
        print(f"error: --parallelism={parallelism} is not valid: use 0 (all cells at once) or more", file=sys.stderr)
        return 2
    try:
        params, root = prepare_run(check_sweep_params(args), runner)
        pipeline = build_sweep_pipeline(profile, parallelism, retries=False)  # a failure is reported at once
        log.info("running pipeline %s locally (%s runner, %d cell(s) at once), outputs under %s", pipeline.name,
                 runner, parallelism, root)
        # The cells at once share the cores: each step's torch gets its part, not every core.
        os.environ.setdefault(THREADS_ENV, str(max(1, available_cores() // max(parallelism, 1))))
        started = time.monotonic()
        start_local_runner(root, runner)
        with executor_input_folded(not show_executor_input):
            folder = Path(pipeline(**params).output.path)
        log.info("sweep finished in %.0f s", time.monotonic() - started)
    except (AptUssError, RuntimeError) as exc:  # RuntimeError: kfp.local's failed task
        return report_failure(exc, "the sweep")
    print_sweep(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
