"""The Makefile's profiles: the defaults `make pipeline-run` passes to the pipeline (dry runs, nothing executes)."""

import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _flags(*make_args: str) -> dict[str, str]:
    """The parameters the run would get: `make -n` prints the recipe without running it, and run_local's own
    parser reads its flags (the profile's defaults for those not given), as text like the Makefile's."""
    from pipelines.local_cli import profile_of
    from pipelines.run_local import build_parser

    out = subprocess.run(["make", "-n", "--no-print-directory", "pipeline-run", *make_args], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    recipe = out.stdout.replace("\\\n", " ")  # the recipe's continued lines, joined
    line = next(ln for ln in recipe.splitlines() if "pipelines.run_local" in ln)
    argv = shlex.split(line.split("pipelines.run_local", 1)[1])
    args = vars(build_parser(profile_of(argv)).parse_args(argv))
    return {k.replace("_", "-"): f"{v:g}" if isinstance(v, float) else str(v) for k, v in args.items()}


@pytest.mark.parametrize("profile, backbone, epochs, lr", [("demo", "demo", "20", "0.03"),
                                                           ("paper", "paper", "100", "0.0003")])
def test_a_profile_sets_backbone_epochs_and_lr(profile, backbone, epochs, lr):
    flags = _flags(f"PROFILE={profile}")
    assert (flags["backbone"], flags["epochs"], flags["lr"]) == (backbone, epochs, lr)


def test_the_default_profile_is_demo_and_each_setting_can_still_be_overridden():
    assert _flags() == _flags("PROFILE=demo")
    flags = _flags("PROFILE=paper", "LR=1e-3", "EPOCHS=7")
    assert (flags["backbone"], flags["epochs"], flags["lr"]) == ("paper", "7", "0.001")


def test_lr_schedule_defaults_to_the_papers_constant_in_both_profiles_and_can_be_set():
    assert _flags()["lr-schedule"] == _flags("PROFILE=paper")["lr-schedule"] == "constant"
    assert _flags("LR_SCHEDULE=cosine")["lr-schedule"] == "cosine"


def test_the_demo_tunes_on_the_snr_of_loud_crops_and_the_paper_on_l1_of_random_crops():
    # The demo's choice on validation clips of the real recordings (docs/selection.md).
    assert (_flags()["loss-function"], _flags()["crop-rule"]) == ("snr", "loud")
    assert _flags("CROP_RULE=random")["crop-rule"] == "random"
    paper = _flags("PROFILE=paper")
    assert (paper["loss-function"], paper["crop-rule"]) == ("l1", "random")
    flags = _flags("LOSS_FUNCTION=l1", "CROP_RULE=random")
    assert (flags["backbone"], flags["loss-function"], flags["crop-rule"]) == ("demo", "l1", "random")


def test_an_unknown_profile_is_refused_by_name():
    out = subprocess.run(["make", "-n", "pipeline-run", "PROFILE=fast"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode != 0 and "PROFILE=fast is unknown: use demo or paper" in out.stderr


@pytest.mark.parametrize("given, message", [
    (["NSHOT=10"], "NSHOT is not a variable of this Makefile (did you mean N_SHOT?)"),
    (["crop_rule=loud"], "crop_rule is not a variable of this Makefile (did you mean CROP_RULE?)"),
    (["N_SHOT=10", "FROBNICATE=1"], "FROBNICATE is not a variable of this Makefile;"),
])
def test_a_misspelled_variable_stops_make_naming_it_and_the_closest_name(given, message):
    out = subprocess.run(["make", "-n", "--no-print-directory", "pipeline-run", *given], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and message in out.stderr and "pipelines.run_local" not in out.stdout


def test_every_variable_the_readme_and_tests_pass_to_make_is_known():
    """The spelled-out variables (profiles, images, ports, cluster settings, environment) still pass."""
    given = ["N_SHOT=10", "PROFILE=paper", "LR=1e-3", "RUNNER=docker", "S3_PORT=18333", "MLFLOW_PORT=15000",
             "MLFLOW_DB_PORT=15433", "BASE_IMAGE=x", "GPU_BASE_IMAGE=y", "EXTRA_CA_CERTS_DIR=z", "TAG=1",
             "REGISTRY=r", "KFP_HOST=h", "TUNE_GPUS=2", "PURGE=1", "STATE=s", "TEST_WORKERS=1", "RUNS=a b"]
    out = subprocess.run(["make", "-n", "--no-print-directory", "pipeline-run", *given], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
