"""Every user-facing pipeline parameter, declared once: name, type, allowed values, help, default per profile.

The pipeline's signature (``pipelines/apt_uss_pipeline.py``), the flags of ``pipelines.run_local``
and ``pipelines.submit``, the Makefile's variables (the upper-case names), the step commands'
flags (``python -m apt_uss <step>``), the parameter check, the parameters a report records and
the README's parameter table are all built from ``PARAMETERS`` and ``PROFILES`` (or tested
against them). A new parameter goes here first.

Standard library only: the Makefile reads this module before the virtual environment exists
(``python3 -m apt_uss.params.spec make-variables``).
"""

from __future__ import annotations

import difflib
import json
import sys
from dataclasses import dataclass

from ..errors import AptUssError

# Allowed values, named here once; the modules that act on them import them from here.
DATASETS = ("synthetic", "debian_sounds", "esc50", "musdb18")
MIX_RULES = ("energy_match", "sum")
# Where a training crop starts: "random" (uniform, the paper's) or "loud" (the loudest of a few uniform
# starts, as the demo backbone was trained, so few targets are near-silent crops of a clip's quiet part).
CROP_RULES = ("random", "loud")
TUNE_MODES = ("prompts", "joint")
PRECISIONS = ("fp32", "bf16")
LR_SCHEDULES = ("constant", "cosine")
LOSS_FUNCTIONS = ("l1", "snr")
BACKBONES = ("demo", "tiny", "small", "paper")

# What the Kubeflow tuning pod tolerates by default: the taint GPU node pools carry.
GPU_TOLERATIONS = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


@dataclass(frozen=True)
class Parameter:
    """One pipeline parameter. ``default`` is used by every profile that does not set its own."""

    name: str
    type: type
    default: object  # PER_PROFILE: each profile sets it
    help: str
    group: str
    choices: tuple = ()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def make_variable(self) -> str:
        return self.name.upper()


PER_PROFILE = object()


def _p(name, kind, default, help, group, choices=()):
    return Parameter(name, kind, default, help, group, tuple(choices))


PARAMETERS: tuple[Parameter, ...] = (
    # The method
    _p("n_shot", str, "5", "training clips per class (MUSDB18: tracks): a positive integer or `full`", "method"),
    _p("seed", int, 0, "seed of the synthetic data; also of the few-shot draw and the mixtures unless set apart",
       "method"),
    _p("shot_seed", int, -1, "seed of the few-shot draw; -1: `seed`", "method"),
    _p("mix_seed", int, -1, "seed of the training and test mixtures; -1: `seed`", "method"),
    _p("epochs", int, PER_PROFILE, "tuning epochs (one mixture per training clip in each)", "method"),
    _p("lr", float, PER_PROFILE, "Adam learning rate of the prompts", "method"),
    _p("lr_schedule", str, "constant", "`constant` (the paper's) or `cosine` (decays to 0 over the run)", "method", LR_SCHEDULES),
    _p("loss_function", str, PER_PROFILE, "`l1` (waveform L1, the paper's) or `snr` (negative SNR, capped at 30 dB)", "method",
       LOSS_FUNCTIONS),
    _p("batch_size", int, 4, "mixtures per tuning step", "method"),
    _p("validation_clips", int, 0, "training-fold clips per class held out of the shots for validation "
       "(never the test folds); 0: none", "method"),
    _p("keep_best_epoch", bool, False, "`true`: keep the prompts of the epoch with the lowest validation loss, "
       "not the last epoch's (needs `validation_clips`)", "method"),
    _p("tune", str, "prompts", "`prompts` (APT) or `joint` (prompts and separator weights: the paper's upper bound)", "method", TUNE_MODES),
    _p("precision", str, "fp32", "`fp32` or `bf16` (autocast of the forward pass; for CUDA)", "method", PRECISIONS),
    _p("checkpoint_uri", str, "", "per-epoch tuning state, resumed from (folder or `s3://`); empty: beside the run's artifacts",
       "method"),
    # The data
    _p("dataset", str, "synthetic", "`synthetic`, `debian_sounds` (real recorded instruments and drums, "
       "built by `make corpus`), `esc50` or `musdb18`", "data", DATASETS),
    _p("dataset_uri", str, "", "folder or archive (path, `file://`, `https://`, `s3://`); empty for `esc50`: the official one; "
       "for `debian_sounds`: the one `make corpus` built",
       "data"),
    _p("dataset_sha256", str, "", "the archive's expected sha256 (64 hex digits); empty: not checked", "data"),
    _p("n_classes", int, 10, "classes of the synthetic dataset (2 to 50)", "data"),
    _p("train_folds", str, "1,2,3", "folds the training clips are drawn from (the paper's ESC-50 split)", "data"),
    _p("test_folds", str, "4,5", "folds of the test clips; none may also be a training fold", "data"),
    _p("crop_seconds", float, 2.0, "length of the training crops (the paper's), at most the clips' length", "data"),
    _p("mix_rule", str, "energy_match", "`energy_match` (interferer scaled to the target's energy, ratio clipped to [0.02, 50]) or `sum`",
       "data", MIX_RULES),
    _p("crop_rule", str, PER_PROFILE, "training target crop: `random` (the paper's) or `loud` (the loudest of 3 uniform starts)", "data", CROP_RULES),
    # The frozen backbone
    _p("backbone", str, PER_PROFILE, "`demo` (shipped weights), `paper` (the official checkpoints' shape), `small` (CPU size, your weights), `tiny` (tests)", "backbone", BACKBONES),
    _p("sed_checkpoint_uri", str, "", "HTS-AT SED weights (path, `file://`, `https://`, `s3://`, optional `#sha256=`); empty: the SED in the separator checkpoint",
       "backbone"),
    _p("separator_checkpoint_uri", str, "", "separator weights (same forms); needed unless the backbone's weights ship with the package", "backbone"),
    _p("random_weights", bool, False, "`true`: a backbone part without checkpoint runs on seeded random weights (tests, smoke runs); else it is refused", "backbone"),
    _p("backbone_seed", int, 0, "init seed of a backbone part on random weights", "backbone"),
    _p("device", str, "auto", "`auto` (CUDA when present), `cpu` or `cuda[:N]`", "backbone"),
    # Tracking and outputs
    _p("tracking_uri", str, "", "MLflow URI; empty: `$MLFLOW_TRACKING_URI`, else `.apt-uss/mlflow.db`", "outputs"),
    _p("experiment", str, "apt-uss", "MLflow experiment", "outputs"),
    _p("artifact_uri", str, "s3://apt-uss/runs", "where the run's files go (`s3://`); empty skips the upload", "outputs"),
    _p("model_name", str, "", "MLflow Model Registry name the tuned prompts are registered under, with their backbone; "
       "empty: `apt-uss-<dataset>`; `none`: logged with the run, not registered", "outputs"),
    _p("audio_examples_per_class", int, 2, "test mixtures per class rendered as audio examples in the report; 0 for none", "outputs"),
    # Kubeflow cluster (ignored by the local runners)
    # GPU counts are text: Kubeflow's driver reads a pod's accelerator count from a string parameter only (a number
    # parameter gives no GPU at all), as KFP's own samples declare it.
    _p("tune_gpus", str, "1", "GPUs of the tuning pod (a whole number)", "cluster"),
    _p("model_gpus", str, PER_PROFILE, "GPUs of each pod that runs the backbone over many clips (embedding "
       "initialization, both evaluations, audio examples); 0: CPU pods", "cluster"),
    _p("gpu_tolerations", list, GPU_TOLERATIONS, "tolerations of the tuning pod (JSON list)", "cluster"),
    _p("gpu_node_selector", dict, {}, "node selector of the tuning pod (JSON object; empty: any node)", "cluster"),
    _p("credentials_secret", str, "apt-uss-credentials", "Secret holding the S3 keys", "cluster"),
    _p("config_map", str, "apt-uss-config", "ConfigMap holding the S3 endpoint, region and MLflow URI", "cluster"),
)

# The sweep pipeline's own parameters (``make sweep``, pipelines/sweep_pipeline.py): its cells stand for the
# per-run n_shot, shot_seed and mix_seed (PER_CELL).
SWEEP_ONLY: tuple[Parameter, ...] = (
    _p("sweep_shots", str, "1,5,10,full", "the sweep's n_shot values (comma-separated)", "sweep"),
    _p("seeds", str, "3", "the sweep's seeds of the few-shot draw and the mixtures: a count N (seeds 1 to N; "
       "seed 0 draws the shots `make select-settings` chooses on) or a list", "sweep"),
)
PER_CELL = ("n_shot", "shot_seed", "mix_seed", "audio_examples_per_class")
# A run's own outputs that a sweep does not make (its cells register no model).
RUN_ONLY = ("model_name",)
# The parameters of the sweep pipeline, in declaration order: the run's, less what a cell sets, and its own.
SWEEP_PARAMETERS: tuple[Parameter, ...] = tuple(p for p in PARAMETERS if p.name not in PER_CELL + RUN_ONLY) \
    + SWEEP_ONLY
PIPELINES = {"run": PARAMETERS, "sweep": SWEEP_PARAMETERS}

BY_NAME = {p.name: p for p in PARAMETERS + SWEEP_ONLY}

# Named parameter sets: the values each profile gives the PER_PROFILE parameters (any can still be given).
#   demo:  the shipped CPU backbone; lr, loss, crop rule and epochs chosen on validation clips of the training
#          folds of the real recordings (make select-settings DATASET=debian_sounds, docs/selection.md): the
#          negative SNR at lr 3e-2 on loud crops for 20 epochs; the constant lr (lr_schedule's default) beat
#          cosine there too.
#   paper: the paper's settings and the official checkpoints' shape (pass both checkpoint URIs); on a cluster the
#          pods that run the 370 M-parameter backbone over many clips ask for a GPU (model_gpus), where the demo's
#          2.4 M-parameter one runs on CPU pods.
PROFILES: dict[str, dict[str, object]] = {
    "demo": {"backbone": "demo", "epochs": 20, "lr": 3e-2, "loss_function": "snr", "crop_rule": "loud",
             "model_gpus": "0"},
    "paper": {"backbone": "paper", "epochs": 100, "lr": 3e-4, "loss_function": "l1", "crop_rule": "random",
              "model_gpus": "1"},
}
DEFAULT_PROFILE = "demo"

# Parameters that say where a run's results go and how the cluster runs it, not what is computed.
NOT_RESULT_PARAMETERS = ("tracking_uri", "experiment", "artifact_uri", "model_name", "checkpoint_uri", "tune_gpus",
                         "model_gpus",
                         "gpu_tolerations", "gpu_node_selector", "credentials_secret", "config_map")


def registered_model_name(model_name: str, dataset: str) -> str:
    """The registry name of a run's tuned prompts: the one given, else ``apt-uss-<dataset>``; "" for ``none``."""
    if str(model_name).strip().lower() == "none":
        return ""
    return str(model_name).strip() or f"apt-uss-{dataset}"


def seed_of(seed: int, own_seed: int) -> int:
    """A purpose's seed: its own (``shot_seed``, ``mix_seed``) where given (0 up), else the run's ``seed``."""
    return int(own_seed) if int(own_seed) >= 0 else int(seed)


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise AptUssError(f"profile={profile!r} is unknown: allowed are {', '.join(PROFILES)}")
    return profile


def defaults(profile: str = DEFAULT_PROFILE) -> dict[str, object]:
    """Every parameter's default under ``profile``, in declaration order (fresh copies of lists and dicts)."""
    chosen = PROFILES[check_profile(profile)]
    return {p.name: json.loads(json.dumps(chosen[p.name] if p.default is PER_PROFILE else p.default))
            for p in PARAMETERS + SWEEP_ONLY}


def parameters_of(pipeline: str = "run") -> tuple[Parameter, ...]:
    """The parameters of ``pipeline``: ``run`` (one pipeline run) or ``sweep`` (Table 2 in one run)."""
    if pipeline not in PIPELINES:
        raise AptUssError(f"pipeline={pipeline!r} is unknown: allowed are {', '.join(PIPELINES)}")
    return PIPELINES[pipeline]


# What a run's parameter check reads: every parameter but the cluster's pod settings (the GPU count is checked).
CHECKED_PARAMETERS = tuple(p.name for p in PARAMETERS if p.group != "cluster") + ("tune_gpus", "model_gpus")
SWEEP_CHECKED_PARAMETERS = tuple(p.name for p in SWEEP_PARAMETERS if p.group != "cluster") + ("tune_gpus",
                                                                                              "model_gpus")
# The parameters that make up a backbone spec (apt_uss.models.backbone.BackboneSpec), which travels to the
# steps that run the model as one parameter.
BACKBONE_PARAMETERS = ("backbone", "sed_checkpoint_uri", "separator_checkpoint_uri", "backbone_seed", "device",
                       "random_weights")
# The parameters that decide a run's numbers: what a report and MLflow record, in declaration order.
RESULT_PARAMETERS = tuple(p.name for p in PARAMETERS if p.name not in NOT_RESULT_PARAMETERS)
SWEEP_RESULT_PARAMETERS = tuple(p.name for p in SWEEP_PARAMETERS if p.name not in NOT_RESULT_PARAMETERS)


def parse_value(name: str, text: object) -> object:
    """``text`` (a command-line word, a Make variable, a KFP value inside a dict) as parameter ``name``'s type.

    Integers written as floats (KFP hands ``20.0``) are read back as integers; lists and dicts are JSON.
    """
    if name not in BY_NAME:
        raise AptUssError(f"{name!r} is not a pipeline parameter" + closest_name(name))
    kind = BY_NAME[name].type
    if isinstance(text, kind) and not (kind is int and isinstance(text, bool)):
        return text
    word = str(text).strip() if not isinstance(text, (list, dict)) else text
    try:
        if kind is bool:
            if isinstance(word, str) and word.lower() in ("true", "yes", "1"):
                return True
            if isinstance(word, str) and word.lower() in ("false", "no", "0", ""):
                return False
            raise ValueError
        if kind is int:
            number = float(word)
            if not number.is_integer():
                raise ValueError
            return int(number)
        if kind is float:
            return float(word)
        if kind in (list, dict):
            if isinstance(word, str) and not word:  # an empty Make variable: the parameter's default
                return json.loads(json.dumps(BY_NAME[name].default))
            value = json.loads(word) if isinstance(word, str) else word
            if not isinstance(value, kind):
                raise ValueError
            return value
        return str(text)
    except (TypeError, ValueError, OverflowError):
        what = {bool: "true or false", int: "an integer", float: "a number", list: "a JSON list",
                dict: "a JSON object"}[kind]
        raise AptUssError(f"{name}={text!r} is not valid: it must be {what}") from None


def check_choice(name: str, value: object) -> object:
    """``value`` if parameter ``name`` allows it (parameters without a fixed set allow anything)."""
    choices = BY_NAME[name].choices
    if choices and value not in choices:
        raise AptUssError(f"{name}={value!r} is unknown: allowed are {', '.join(choices)}")
    return value


def closest_name(name: str) -> str:
    close = difflib.get_close_matches(name.lower(), list(BY_NAME), 1, 0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def markdown_table() -> str:
    """The README's parameter table (tests/test_params_spec.py keeps the README equal to it)."""
    demo, paper = defaults("demo"), defaults("paper")
    lines = ["| Make variable | demo | paper | what it is |", "|---|---|---|---|"]
    for p in PARAMETERS + SWEEP_ONLY:
        if p.group == "cluster":
            continue
        demo_cell, paper_cell = (f"`{json.dumps(v) if isinstance(v, (list, dict, bool)) else v}`" if v != "" else ""
                                 for v in (demo[p.name], paper[p.name]))
        paper_cell = paper_cell if paper_cell != demo_cell else ""  # blank: as in demo
        lines.append(f"| `{p.make_variable}` | {demo_cell} | {paper_cell} | {p.help} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv[:1] == ["make-variables"] and len(argv) <= 2 and (argv[1:] or ["run"])[0] in PIPELINES:
        print(" ".join(f"{p.make_variable}={p.flag}" for p in PIPELINES[(argv[1:] or ["run"])[0]]))
    elif argv == ["profiles"]:
        print(" ".join(PROFILES))
    elif argv == ["markdown"]:
        print(markdown_table())
    else:
        print("usage: python3 -m apt_uss.params.spec make-variables [run|sweep]|profiles|markdown", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
