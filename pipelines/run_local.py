"""Run the whole pipeline on this machine with KFP's local runner.

``python -m pipelines.run_local [--profile paper] --n-shot 5 [--epochs 20 ...]``: every pipeline parameter
is a flag, defaulting to the profile's value. Inputs are checked and the tracking store and S3 endpoint probed before any
step runs, so a bad value costs seconds, not a failed run.

``--runner subprocess`` (default) runs every step in this interpreter's environment.
``--runner docker`` runs every step in its image through KFP's DockerRunner, against the
cluster's topology in miniature: unless a tracking URI is given, a local MLflow server on
PostgreSQL whose artifacts go to the S3 server, all on 127.0.0.1, reached from the
containers by host networking; S3 and MLflow credentials reach them as environment variables.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import warnings
from pathlib import Path

import pandas as pd

from apt_uss.errors import AptUssError
from apt_uss.io import storage, tracking
from apt_uss.logs import configure_logging, executor_input_folded
from apt_uss.params import spec
from apt_uss.steps.validation import check_local_inputs, check_pipeline_params
from pipelines.apt_uss_pipeline import build_pipeline
from pipelines.local_cli import FlagParser, add_pipeline_flags, add_show_executor_input_flag, profile_of, report_failure

log = logging.getLogger("apt_uss.run_local")
RUNNERS = ("subprocess", "docker")
# Every parameter is passed, so the profile's defaults do not matter here. Without the cluster's retries: KFP's local
# runner honours them, and a bad input would first wait out their backoff (30 s, then 60 s).
LOCAL_PIPELINE = build_pipeline(retries=False)


def build_parser(profile: str = spec.DEFAULT_PROFILE) -> argparse.ArgumentParser:
    parser = FlagParser(prog="python -m pipelines.run_local", description=__doc__)
    add_pipeline_flags(parser, profile)
    parser.add_argument("--runner", default="subprocess", choices=list(RUNNERS),
                        help="subprocess: steps in this environment; docker: each step in its image")
    add_show_executor_input_flag(parser)
    return parser


def check_services(params: dict) -> dict:
    """The tracking store and S3 answer (and the run's bucket exists); fill in the resolved tracking URI."""
    params = dict(params)
    params["tracking_uri"] = tracking.resolve_tracking_uri(params["tracking_uri"])
    tracking.check_tracking(params["tracking_uri"])
    if params["artifact_uri"]:
        storage.ensure_bucket(params["artifact_uri"])
    return params


def run_pipeline(params: dict, pipeline_root: Path, runner: str = "subprocess") -> Path:
    """Run the DAG (in this interpreter's environment, or each step in its container); return the report directory."""
    start_local_runner(pipeline_root, runner)
    task = LOCAL_PIPELINE(**params)
    return Path(task.output.path)


def start_local_runner(pipeline_root: Path, runner: str = "subprocess") -> None:
    """Point kfp.local at ``pipeline_root`` with the subprocess runner, or the Docker runner set up for the steps'
    images (host network, the caller's S3 and MLflow environment, a user who can write the outputs)."""
    from kfp import local

    # Warnings KFP's local runner gives for every task, true of every local run and harmless: the tasks' resource
    # requests are for a cluster, and the subprocess runner runs each step in this environment, not in its image.
    warnings.filterwarnings("ignore", message=r"Task .*: settings .* have no effect in the current local runner")
    warnings.filterwarnings("ignore", message=r"You may be attemping to run a task that uses custom or non-Python")
    if runner == "docker":
        from apt_uss.tools import container_runner
        from components.apt_uss_components import CPU_IMAGE, GPU_IMAGE

        env = container_runner.forwarded_environment()
        # Caches and default state of the steps persist in the mounted outputs folder, not in a container.
        env["APT_USS_HOME"] = str(pipeline_root / ".state")
        env["HOME"] = "/tmp"
        container_runner.install_exit_code_guard(env)
        # The image's unprivileged user where it can write the outputs inside the containers, else the caller.
        user = container_runner.container_user(pipeline_root, env, images=[CPU_IMAGE, GPU_IMAGE])
        local.init(runner=local.DockerRunner(network_mode="host", user=user), pipeline_root=str(pipeline_root))
    else:
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(pipeline_root))


def prepare_containers(params: dict) -> dict:
    """Before a containerized run: the engine answers, the images are here, and a tracking server runs.

    Containers cannot open the host's sqlite file, so without a tracking URI of the user's the
    run starts the local MLflow server (PostgreSQL backend, artifacts in the run's S3 bucket).
    """
    from apt_uss.tools import container_runner, local_mlflow
    from components.apt_uss_components import CPU_IMAGE, GPU_IMAGE

    given = params["tracking_uri"] or os.environ.get("MLFLOW_TRACKING_URI", "")
    if given and not given.startswith(("http://", "https://")):
        raise AptUssError(f"tracking URI {tracking.redact(given)} cannot be reached from the step containers: "
                          "give an http(s) MLflow server, or leave TRACKING_URI and MLFLOW_TRACKING_URI empty "
                          "to start the local one")
    container_runner.check_images(container_runner.engine(), [CPU_IMAGE, GPU_IMAGE])
    if not given:
        folder = tracking.state_dir() / "mlflow-server"
        uri = local_mlflow.up(folder, container_runner.s3_environment(),
                              local_mlflow.artifacts_destination(params["artifact_uri"], folder),
                              port=local_mlflow.server_port())
        params = dict(params, tracking_uri=uri)
    return params


def prepare_run(params: dict, runner: str) -> tuple[dict, Path]:
    """After the parameter check: the inputs named by path exist, for containers the engine, images and servers, then
    the service probes; returns the parameters (with the resolved tracking URI) and the outputs' folder."""
    check_local_inputs(params)
    outputs = tracking.state_dir() / ("kfp-outputs" if runner == "subprocess" else "kfp-docker-outputs")
    if runner == "docker":
        params = prepare_containers(params)
        share_built_corpus(params, outputs / ".state")
    params = check_services(params)
    return params, outputs


def share_built_corpus(params: dict, container_state: Path) -> None:
    """DATASET=debian_sounds without a URI reads the corpus `make corpus` built into the cache; a container's cache
    is under the mounted outputs folder (its APT_USS_HOME), so the archive is linked (or copied) there."""
    if params.get("dataset") != "debian_sounds" or params.get("dataset_uri"):
        return
    from apt_uss.data import debian_sounds
    from apt_uss.io.download import sha256_file

    archive = debian_sounds.built_archive()
    target = container_state / "cache" / "corpus" / archive.name
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_file() and (os.path.samefile(target, archive) or sha256_file(target) == sha256_file(archive)):
        return
    target.unlink(missing_ok=True)
    try:
        os.link(archive, target)
    except OSError:
        shutil.copyfile(archive, target)


def print_report(report: Path) -> None:
    summary = json.loads((report / "summary.json").read_text())
    run = json.loads((report / "run.json").read_text())
    per_class = pd.read_csv(report / "per_class.csv")
    shown = ["target_class", "n_mixtures", "sdr_baseline_median", "sdr_apt_median", "sdr_gain", "sdr_oracle_mask_median"]
    table = per_class[[c for c in shown if c in per_class.columns]]
    print("\nPer-class median SDR (dB), baseline (initial prompts) vs APT (tuned prompts):")
    print(table.to_string(index=False, float_format=lambda v: f"{v:6.2f}"))
    print("\nOverall (BSS Eval v4 SDR, dB):")
    for name in ("pooled_median", "pooled_mean", "class_mean"):
        b, a = summary[f"sdr_baseline_{name}"], summary[f"sdr_apt_{name}"]
        print(f"  {name:14s} baseline {b:6.2f}  APT {a:6.2f}  gain {a - b:+.2f}")
    if "si_sdr_baseline_pooled_median" in summary:
        b, a = summary["si_sdr_baseline_pooled_median"], summary["si_sdr_apt_pooled_median"]
        print(f"  {'SI-SDR median':14s} baseline {b:6.2f}  APT {a:6.2f}  gain {a - b:+.2f}  (mixture itself: "
              f"{summary['si_sdr_mixture_pooled_median']:.2f} dB)")
    b, a = summary["sdri_baseline_pooled_median"], summary["sdri_apt_pooled_median"]
    print(f"  {'SDRi median':14s} baseline {b:6.2f}  APT {a:6.2f}  (mixture itself: "
          f"{summary['sdr_mixture_pooled_median']:.2f} dB)")
    if "sdr_oracle_mask_pooled_median" in summary:
        print(f"  {'oracle mask':14s} {summary['sdr_oracle_mask_pooled_median']:6.2f}  (the best mask on the separator's "
              "STFT: the ceiling of its output kind)")
    if summary.get("n_skipped_silent_reference"):
        print(f"  skipped: {summary['n_skipped_silent_reference']} test mixtures with a silent reference")
    print(f"  classes improved: {summary['classes_improved']}/{summary['n_classes']}"
          f"  ({summary['n_mixtures']} test mixtures)")
    print(f"\nMLflow run:   {run['mlflow_run_id']} (experiment {run['experiment']!r}) at {run['mlflow_tracking_uri']}")
    if run.get("provenance"):
        shown = run["provenance"]
        print(f"Provenance:   {shown.get('backbone', '?')} separator {shown.get('separator_weights', '?')[:19]}..., "
              f"data {shown.get('dataset_fingerprint', '?')[:12]}..., code {shown.get('git_commit', '?')[:12]} "
              f"(MLflow parameters provenance.*)")
    if run["s3"]:
        print(f"S3 artifacts: {run['s3_prefix']} ({len(run['s3'])} files: tables, prompts, figures, audio examples)")
    if run.get("model", {}).get("registered_uri"):
        print(f"Model:        {run['model']['registered_uri']} (the tuned prompts with their backbone: "
              "python -m apt_uss separate --model ...)")
    print(f"Report:       {report}")
    print(f"HTML report:  {report / 'report.html'}")


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    args = vars(build_parser(profile_of(argv)).parse_args(argv))
    runner, show_executor_input = args.pop("runner"), args.pop("show_executor_input")
    args.pop("profile")
    try:
        # Input first (seconds), then for containers the engine, images and servers, then the probes.
        params, root = prepare_run(check_pipeline_params(args), runner)
        log.info("running pipeline %s locally (%s runner), outputs under %s", LOCAL_PIPELINE.name, runner, root)
        with executor_input_folded(not show_executor_input):
            report = run_pipeline(params, root, runner)
    except (AptUssError, RuntimeError) as exc:  # RuntimeError: kfp.local's failed task
        return report_failure(exc, "the pipeline")
    print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
