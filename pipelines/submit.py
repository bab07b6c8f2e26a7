"""Upload the compiled pipeline to Kubeflow Pipelines as a new version and start a run of it.

``python -m pipelines.submit --host URL [--namespace NS] [--experiment NAME] [--n-shot 10 ...]``
(``make pipeline-submit KFP_HOST=... [KFP_NAMESPACE=...] [EXPERIMENT=...]`` compiles first).

Every pipeline parameter is a flag with the pipeline's default, and the run gets all of them, so the run
records its parameters and Kubeflow UI reruns and clones can change any of them. ``--experiment`` is the
pipeline's own parameter (the MLflow experiment) and also names the KFP experiment of the run, unless
``--kfp-experiment`` names another. The bearer token comes from ``$KFP_TOKEN`` or ``--token-file``.
"""

from __future__ import annotations

import argparse
import sys

from apt_uss.errors import AptUssError
from apt_uss.logs import configure_logging
from apt_uss.params import spec
from apt_uss.steps.validation import check_pipeline_params, check_sweep_params
from apt_uss.tools import kfp_submit
from pipelines.apt_uss_pipeline import PIPELINE_NAME
from pipelines.local_cli import FlagParser, add_pipeline_flags, profile_of, report_failure
from pipelines.sweep_pipeline import SWEEP_PIPELINE_NAME

DEFAULT_PACKAGE = "dist/apt_uss_pipeline.yaml"
SWEEP_PACKAGE = "dist/apt_uss_sweep.yaml"
OPTIONS = ("host", "namespace", "kfp_experiment", "pipeline_name", "package", "run_name", "token_file")


def pipeline_of(argv: list[str] | None) -> str:
    """The ``--pipeline`` given in ``argv`` (run or sweep), read before the parameter flags are added."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--pipeline", default="run", choices=list(spec.PIPELINES))
    return pre.parse_known_args(argv)[0].pipeline


def build_parser(profile: str = spec.DEFAULT_PROFILE, pipeline: str = "run") -> argparse.ArgumentParser:
    parser = FlagParser(prog="python -m pipelines.submit", description=__doc__,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", required=True, help="KFP API endpoint, e.g. http://127.0.0.1:8080 or "
                                                      "https://kubeflow.example.com/pipeline")
    parser.add_argument("--namespace", default="", help="Kubernetes namespace (multi-user Kubeflow)")
    parser.add_argument("--kfp-experiment", default="", help="KFP experiment of the run (default: --experiment)")
    sweep = pipeline == "sweep"
    parser.add_argument("--pipeline-name", default=SWEEP_PIPELINE_NAME if sweep else PIPELINE_NAME,
                        help="pipeline to create or add a version to (default: %(default)s)")
    parser.add_argument("--package", default=SWEEP_PACKAGE if sweep else DEFAULT_PACKAGE,
                        help="compiled pipeline (make pipeline-compile; the sweep: make sweep-compile)")
    parser.add_argument("--run-name", default="", help="default: <pipeline name>-<UTC time>")
    parser.add_argument("--token-file", default="",
                        help=f"file holding the bearer token (default: ${kfp_submit.TOKEN_ENV})")
    parser.add_argument("--pipeline", default=pipeline, choices=list(spec.PIPELINES),
                        help="run: the compiled pipeline is one run; sweep: it is the sweep (make sweep-compile)")
    add_pipeline_flags(parser, profile, pipeline)
    return parser


def submit(args: dict) -> dict:
    """Upload ``args['package']`` and start one run with every pipeline parameter; return the ids and URL."""
    options = {name: args[name] for name in OPTIONS}
    pipeline = args.get("pipeline", "run")
    params = {q.name: args[q.name] for q in spec.parameters_of(pipeline)}
    # bad input fails here, not on the cluster after scheduling
    params = check_sweep_params(params) if pipeline == "sweep" else check_pipeline_params(params)
    kfp_submit.package_info(options["package"])  # a missing package fails before any network call
    client = kfp_submit.connect(options["host"], options["namespace"], token_file=options["token_file"] or None)
    pipeline_id, version_id = kfp_submit.upload_pipeline(client, options["package"], options["pipeline_name"])
    run_name = options["run_name"] or kfp_submit.default_run_name(options["pipeline_name"])
    experiment = options["kfp_experiment"] or params["experiment"]
    run_id = kfp_submit.submit_run(client, pipeline_id, version_id, experiment, run_name, params)
    return {"pipeline_id": pipeline_id, "version_id": version_id, "experiment": experiment,
            "run_name": run_name, "run_id": run_id, "url": kfp_submit.run_url(options["host"], run_id)}


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    args = vars(build_parser(profile_of(argv), pipeline_of(argv)).parse_args(argv))
    try:
        result = submit(args)
    except AptUssError as exc:
        return report_failure(exc, "the submission")
    print(f"pipeline:   {args['pipeline_name']} ({result['pipeline_id']})")
    print(f"version:    {result['version_id']}")
    print(f"experiment: {result['experiment']}")
    print(f"run:        {result['run_name']} ({result['run_id']})")
    print(f"run URL:    {result['url']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
