"""One GPU check in a few minutes: ``python -m apt_uss.tools.gpu_check [--json out.json] [--dry] [--budget-s S]``.

On a CUDA machine it measures, through the library's own functions (what the pipeline runs):

tuning_fp32, tuning_bf16   prompt-tuning steps/s of ``tuning.tune_prompts`` on the ``paper`` backbone
                           (2048-d prompts, batch 4, 2-s crops), fp32 and bf16 autocast; the first
                           epoch is a warm-up, the later ones are timed (the median epoch sets the rate)
evaluation                 5-s 32 kHz mixtures/s through ``evaluation.separate`` on the BatchNorm-folded
                           frozen separator, at batch sizes 1, 8, 32, in fp32 and bf16 autocast, and
                           the SNR of the bf16 estimates against the fp32 ones
pipeline                   the pipeline's step functions in sequence, in-process (no KFP, MLflow or S3):
                           synthetic dataset -> fold split -> mixtures -> initial prompts -> tuning a
                           few epochs -> evaluation of the baseline and the tuned prompts; wall time
                           per stage and the two pooled median SDRs
tuning_compile             the same tuning loop with the frozen separator under ``torch.compile``
                           (last: its compile time is the hardest to bound)

with the peak GPU memory of each (``torch.cuda.max_memory_allocated``). Each section gets a share of
``--budget-s`` (default: the whole check well under 5 minutes on an H200), stops itself at its
deadline and records what it skipped and why; a section that fails records its error and the
check goes on. The JSON is rewritten after every section, so a check cut short keeps what it had.

No checkpoint can be downloaded on a bare GPU machine: the ``paper`` backbone runs with seeded
random weights, so its SDRs check the code path, not separation quality.

Without CUDA (or with ``--dry``) it runs a short CPU dry mode on the ``tiny`` backbone and says
that the GPU figures were not measured.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import json
import logging
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from apt_uss.data.clips import ClipStore

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = "apt-uss gpu-check 1"
DEFAULT_BUDGET_S = 240.0  # + Python/torch start-up and the hard-stop grace: under 5 minutes
GRACE_S = 15.0  # past a section's deadline, the hard stop (SIGALRM) ends it wherever it is
# Shares of the budget, in the order the sections run; the last takes what is left.
SHARES = {"tuning_fp32": 0.10, "tuning_bf16": 0.10, "evaluation": 0.14, "pipeline": 0.28, "tuning_compile": 0.38}
SECTIONS = tuple(SHARES)
MIN_SECTION_S = 3.0  # below this a section is skipped rather than started


@dataclass(frozen=True)
class Sizes:
    tune_classes: int  # tuning problem: classes x clips per class mixtures per epoch
    tune_clips_per_class: int
    tune_batch: int
    tune_max_epochs: int  # the first a warm-up
    tune_min_timed: int
    tune_target_s: float  # enough timed epochs: at least this many seconds of them (or the deadline)
    eval_batch_sizes: tuple[int, ...]
    eval_min_reps: int
    eval_max_reps: int
    eval_min_time_s: float
    pipe_classes: int
    pipe_n_shot: int
    pipe_epochs: int
    pipe_test_folds: str


CUDA_SIZES = Sizes(tune_classes=8, tune_clips_per_class=4, tune_batch=4, tune_max_epochs=41, tune_min_timed=2,
                   tune_target_s=8.0, eval_batch_sizes=(1, 8, 32), eval_min_reps=3, eval_max_reps=40,
                   eval_min_time_s=1.5, pipe_classes=4, pipe_n_shot=5, pipe_epochs=3, pipe_test_folds="4,5")
DRY_SIZES = Sizes(tune_classes=4, tune_clips_per_class=1, tune_batch=4, tune_max_epochs=3, tune_min_timed=2,
                  tune_target_s=0.0, eval_batch_sizes=(1, 2), eval_min_reps=2, eval_max_reps=2, eval_min_time_s=0.0,
                  pipe_classes=2, pipe_n_shot=2, pipe_epochs=2, pipe_test_folds="5")
TUNE_LR = 3e-4  # the paper profile's
CROP_SECONDS = 2.0
EVAL_SECONDS = 5.0
MIX_RULE = "energy_match"

log = logging.getLogger(__name__)


class SectionTimeout(BaseException):
    """A section ran past its hard limit. BaseException, so no ``except Exception`` on the way swallows it."""


class _Enough(Exception):
    """Raised from ``tune_prompts``' ``on_epoch`` to end a timed run early."""


def _say(message: str) -> None:
    print(f"[gpu-check {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:300] if text else ''}".rstrip(": ")


@contextlib.contextmanager
def _hard_limit(seconds: float | None):
    """Raise ``SectionTimeout`` in the main thread after ``seconds`` (a backstop for the soft deadlines)."""
    if (seconds is None or not hasattr(signal, "setitimer")
            or threading.current_thread() is not threading.main_thread()):
        yield
        return

    def _raise(signum, frame):
        raise SectionTimeout(f"hard time limit ({seconds:.0f} s) reached")

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _quiet(*loggers: str):
    """Per-epoch INFO lines of the library during the timed loops: the check prints its own."""
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in loggers]
    for logger, _ in saved:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in saved:
            logger.setLevel(level)


class _DeadlineClips(ClipStore):
    """The clips of a timed run; past ``hard`` the next mixture rendered ends the run (between steps)."""

    def __init__(self, arrays, hard: float):
        super().__init__(arrays=arrays)
        self.hard = hard

    def segment(self, name, offset=0, length=None):
        if time.monotonic() > self.hard:
            raise SectionTimeout("section deadline passed mid-epoch")
        return super().segment(name, offset, length)


# --- the run's bookkeeping ---------------------------------------------------------------------

class Check:
    def __init__(self, args, device: torch.device, gpu: bool, sizes: Sizes):
        self.args, self.device, self.gpu, self.sizes = args, device, gpu, sizes
        self.started = time.monotonic()
        self.deadline = self.started + args.budget_s
        self.backbone = None  # the setup's backbone config name and frozen separator, on the device
        self.separator = None
        self.build_s = None
        self.report: dict = {
            "schema": SCHEMA,
            "mode": "cuda" if gpu else "cpu-dry",
            "gpu_measured": gpu,
            "gpu_figures": "measured" if gpu else (
                "NOT MEASURED: " + ("--dry was given" if args.dry else "no CUDA device is visible")
                + "; this was the short CPU dry mode (tiny sizes), its rates say nothing about a GPU"),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "budget_s": args.budget_s,
            "sizes": asdict(sizes),
            "environment": {},
            "sections": {},
            "skipped": [],
        }

    def sync(self) -> None:
        if self.gpu:
            torch.cuda.synchronize(self.device)

    def reset_peak(self) -> None:
        if self.gpu:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_mib(self) -> float | None:
        if not self.gpu:
            return None
        torch.cuda.synchronize(self.device)
        return torch.cuda.max_memory_allocated(self.device) / 2**20

    def peak_reserved_mib(self) -> float | None:
        return torch.cuda.max_memory_reserved(self.device) / 2**20 if self.gpu else None

    def free(self) -> None:
        gc.collect()
        if self.gpu:
            torch.cuda.empty_cache()

    def skip(self, section: dict, name: str, what: str, why: str) -> None:
        section["skipped"].append({"what": what, "why": why})
        self.report["skipped"].append({"section": name, "what": what, "why": why})
        _say(f"{name}: skipped {what}: {why}")

    def write(self) -> None:
        self.report["wall_s"] = time.monotonic() - self.started
        peaks = [s.get("peak_gpu_mib") for s in self.report["sections"].values() if s.get("peak_gpu_mib") is not None]
        self.report["peak_gpu_mib"] = max(peaks) if peaks else None
        if not self.args.json:
            return
        path = Path(self.args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(_jsonable(self.report), indent=2))
        os.replace(tmp, path)

    def run_section(self, name: str, fn) -> dict:
        """Run ``fn(section, deadline, hard)`` within its share of what is left of the budget."""
        section = {"status": "not run", "skipped": []}
        self.report["sections"][name] = section
        now = time.monotonic()
        left = self.deadline - now
        if name in SHARES:
            later = [s for s in SECTIONS[SECTIONS.index(name) + 1:] if s not in self.args.skip]
            share = SHARES[name] * self.args.budget_s
            wanted = share + sum(SHARES[s] * self.args.budget_s for s in later)
            # Each section its share (scaled down if earlier ones overran); the last takes all that is left.
            allotted = share * min(1.0, left / wanted) if later else left
        else:  # the setup: whatever it takes, within what is left
            allotted = left
        allotted = max(min(allotted, left), 0.0)
        section["allotted_s"] = allotted
        if name in self.args.skip:
            section["status"] = "skipped"
            self.skip(section, name, "the whole section", "--skip")
            self.write()
            return section
        if allotted < MIN_SECTION_S:
            section["status"] = "skipped"
            self.skip(section, name, "the whole section",
                      f"only {allotted:.1f} s of the {self.args.budget_s:.0f}-s budget left for it")
            self.write()
            return section
        deadline = now + allotted
        hard = deadline + GRACE_S
        _say(f"{name}: starting, {allotted:.0f} s allotted ({left:.0f} s of the budget left)")
        self.free()
        self.reset_peak()
        try:
            with _hard_limit(hard - time.monotonic()):
                fn(section, deadline, hard)
            if section["status"] == "not run":
                section["status"] = "partial" if section["skipped"] else "ok"
        except SectionTimeout as exc:
            section["status"] = "timed out"
            self.skip(section, name, "the rest of the section", f"{exc} after {time.monotonic() - now:.0f} s")
        except Exception as exc:  # noqa: BLE001: a failed section is a finding, the check goes on
            section["status"] = "failed"
            section["error"] = _first_line(exc)
            section["traceback_tail"] = traceback.format_exc().splitlines()[-12:]
            _say(f"{name}: FAILED: {section['error']}")
            traceback.print_exc(file=sys.stderr)
        section["seconds"] = time.monotonic() - now
        with contextlib.suppress(Exception):
            section["peak_gpu_mib"] = self.peak_mib()
            section["peak_gpu_reserved_mib"] = self.peak_reserved_mib()
        if not self.gpu:
            section["peak_rss_mib"] = _peak_rss_mib()
        _say(f"{name}: {section['status']} in {section['seconds']:.1f} s"
             + (f", peak GPU memory {section['peak_gpu_mib']:.0f} MiB" if section.get("peak_gpu_mib") else ""))
        self.free()
        self.write()
        return section


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(float(x)) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, (str, int, bool)) or x is None:
        return x
    return str(x)


def _peak_rss_mib() -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


# --- environment -------------------------------------------------------------------------------

def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def source_sha256() -> str:
    """One digest of the package's Python sources (names and contents): which code ran, without git."""
    h = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        h.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def environment(check: Check) -> dict:
    env = {
        "python": platform.python_version(), "platform": platform.platform(), "torch": torch.__version__,
        "torch_cuda": torch.version.cuda, "numpy": np.__version__, "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "device": str(check.device),
        "source_sha256": source_sha256(),
    }
    commit = _git("rev-parse", "HEAD")
    if commit:
        env["git_commit"] = commit
        status = _git("status", "--porcelain", "--untracked-files=no")
        env["git_dirty"] = bool(status) if status is not None else None
    else:
        env["git_commit"] = os.environ.get("GIT_COMMIT") or None
        env["git_commit_note"] = ("from $GIT_COMMIT (no git repository here)" if env["git_commit"]
                                  else "no git repository here and no $GIT_COMMIT: see source_sha256")
    try:
        import torchaudio

        env["torchaudio"] = torchaudio.__version__
    except Exception as exc:  # noqa: BLE001
        env["torchaudio"] = f"not importable: {_first_line(exc)}"
    if check.gpu:
        props = torch.cuda.get_device_properties(check.device)
        env.update({
            "device_name": torch.cuda.get_device_name(check.device),
            "device_capability": ".".join(map(str, torch.cuda.get_device_capability(check.device))),
            "device_total_mib": props.total_memory / 2**20,
            "device_count": torch.cuda.device_count(),
            "cudnn": torch.backends.cudnn.version(),
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "bf16_supported": torch.cuda.is_bf16_supported(),
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
        })
        for key, getter in (("cudnn_allow_tf32", lambda: torch.backends.cudnn.allow_tf32),
                            ("cuda_matmul_allow_tf32", lambda: torch.backends.cuda.matmul.allow_tf32),
                            ("cudnn_conv_fp32_precision", lambda: torch.backends.cudnn.conv.fp32_precision),
                            ("cuda_matmul_fp32_precision", lambda: torch.backends.cuda.matmul.fp32_precision)):
            try:
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    env[key] = getter()
            except Exception:  # noqa: BLE001: an API this torch does not have
                pass
        try:
            smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
                                  "--format=csv,noheader"], capture_output=True, text=True, timeout=10)
            if smi.returncode == 0:
                env["nvidia_smi"] = smi.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return env


# --- setup: the backbone the timed sections share --------------------------------------------------

def setup_section(check: Check, section: dict, deadline: float, hard: float) -> None:
    from apt_uss.models.backbone import load_backbone

    if check.gpu:
        start = time.perf_counter()
        torch.zeros(1, device=check.device)
        check.sync()
        section["cuda_init_s"] = time.perf_counter() - start
    name = check.args.backbone
    start = time.perf_counter()
    backbone = load_backbone(name)  # no checkpoint: seeded random weights (paper), shipped ones (demo)
    check.build_s = time.perf_counter() - start
    sr, dim = backbone.cfg.sample_rate, backbone.cfg.embed_dim
    separator = backbone.separator
    del backbone  # the timed sections need the separator only
    gc.collect()
    start = time.perf_counter()
    separator.to(check.device)
    check.sync()
    check.backbone, check.separator = name, separator
    section.update({
        "backbone": name, "sample_rate": sr, "prompt_dim": dim, "build_s": check.build_s,
        "to_device_s": time.perf_counter() - start,
        "separator_parameters": sum(p.numel() for p in separator.parameters()),
        "weights": "shipped demo weights" if name == "demo" else
        "seeded random (no checkpoint: none can be downloaded here); rates do not depend on the weights' values",
    })
    _say(f"setup: backbone {name!r} built in {check.build_s:.1f} s ({section['separator_parameters'] / 1e6:.1f} M "
         f"separator parameters, {dim}-d prompts), on {check.device} in {section['to_device_s']:.1f} s")


# --- tuning ------------------------------------------------------------------------------------

@contextlib.contextmanager
def _compiled_tuning():
    """``tune_prompts`` with its frozen separator under ``torch.compile``: the loop is the library's, only
    the model it builds is compiled."""
    from apt_uss.method import tuning

    original = tuning.frozen_separator
    tuning.frozen_separator = lambda separator: torch.compile(original(separator))
    try:
        yield
    finally:
        tuning.frozen_separator = original


def _dynamo_counts() -> dict:
    try:
        from torch._dynamo.utils import counters
    except Exception:  # noqa: BLE001
        return {}
    return {"unique_graphs": int(counters["stats"].get("unique_graphs", 0)),
            "graph_breaks": int(sum(counters["graph_break"].values())),
            "graph_break_reasons": [str(k)[:200] for k in list(counters["graph_break"])[:5]]}


def tuning_section(check: Check, section_name: str, precision: str, compiled: bool):
    """The section ``section_name``: ``tune_prompts`` in ``precision``, its model compiled or not."""
    from apt_uss.method.tuning import tune_prompts
    from apt_uss.tools import bench

    def run(section: dict, deadline: float, hard: float) -> None:
        if check.separator is None:
            raise RuntimeError("the setup did not build a separator (see the setup section)")
        if precision == "bf16" and check.gpu and not torch.cuda.is_bf16_supported():
            check.skip(section, section_name, "bf16", "this GPU has no bf16")
            return
        s = check.sizes
        dim = check.report["sections"]["setup"]["prompt_dim"]
        sr = check.report["sections"]["setup"]["sample_rate"]
        crop = int(CROP_SECONDS * sr)
        clips, table = bench._tuning_problem(s.tune_classes, s.tune_clips_per_class, s.tune_max_epochs, crop, sr, 0)
        targets = np.arange(s.tune_classes)
        initial = (0.1 * np.random.default_rng(0).standard_normal((s.tune_classes, dim))).astype(np.float32)
        steps = -(-s.tune_classes * s.tune_clips_per_class // s.tune_batch)
        label = f"{check.backbone} {precision}" + (" compiled" if compiled else "")
        section.update({"backbone": check.backbone, "precision": precision, "compiled": compiled,
                        "batch_size": s.tune_batch, "crop_samples": crop, "prompt_dim": dim, "classes": s.tune_classes,
                        "steps_per_epoch": steps, "lr": TUNE_LR, "loss": "l1", "mix_rule": MIX_RULE})
        marks: list[float] = []
        losses: list[float] = []
        start = time.perf_counter()

        def on_epoch(epoch: int, loss: float) -> None:
            check.sync()
            now = time.perf_counter()
            took = now - (marks[-1] if marks else start)
            marks.append(now)
            losses.append(loss)
            timed = len(marks) - 1
            kind = "warm-up" if timed == 0 else "timed"
            _say(f"tuning {label}: epoch {len(marks)}/{s.tune_max_epochs} ({kind}) {steps} steps in {took:.2f} s, "
                 f"{steps / took:.2f} steps/s, loss {loss:.4f}")
            epoch_s = statistics.median(np.diff(marks)) if timed else took
            left = deadline - time.monotonic()
            if timed >= s.tune_min_timed and (left < epoch_s or marks[-1] - marks[0] >= s.tune_target_s):
                raise _Enough
            if timed < s.tune_min_timed and left < 0:
                raise _Enough

        counts_before = _dynamo_counts() if compiled else {}
        store = _DeadlineClips(clips, deadline + GRACE_S / 2)  # ends a runaway warm-up between steps
        stopped_by = "all epochs"
        with contextlib.ExitStack() as stack:
            stack.enter_context(_quiet("apt_uss.method.tuning"))
            if compiled:
                stack.enter_context(_compiled_tuning())
            try:
                tune_prompts(check.separator, initial, targets, table, store, MIX_RULE, crop, lr=TUNE_LR,
                             batch_size=s.tune_batch, device=check.device, precision=precision, on_epoch=on_epoch)
            except _Enough:
                stopped_by = ("enough timed epochs" if len(marks) - 1 >= s.tune_min_timed
                              and marks[-1] - marks[0] >= s.tune_target_s else "the section's deadline")
            except SectionTimeout as exc:
                stopped_by = f"the hard limit ({exc})"
        if compiled:
            after = _dynamo_counts()
            section["dynamo"] = {"unique_graphs": after.get("unique_graphs", 0) - counts_before.get("unique_graphs", 0),
                                 "graph_breaks": after.get("graph_breaks", 0) - counts_before.get("graph_breaks", 0),
                                 "graph_break_reasons": after.get("graph_break_reasons", [])}
        epoch_s = list(np.diff(marks)) if len(marks) > 1 else []
        section["warmup_epoch_s"] = marks[0] - start if marks else None
        section["timed_epochs"] = len(epoch_s)
        section["epoch_seconds"] = epoch_s
        section["losses"] = losses
        section["stopped_by"] = stopped_by
        eager = check.report["sections"].get("tuning_fp32", {}).get("losses") or []
        common = min(len(eager), len(losses))
        if (compiled or precision != "fp32") and common:
            # Same prompts, same mixtures, same order: the epoch losses should agree with eager fp32's
            # (to rounding for the compiled model, to bf16's precision for autocast).
            section["loss_max_rel_diff_vs_fp32_eager"] = max(abs(a - b) / max(abs(b), 1e-12)
                                                             for a, b in zip(losses[:common], eager[:common]))
        if stopped_by.startswith("the hard limit"):
            check.skip(section, section_name, "the rest of the epochs", stopped_by)
        if not epoch_s:
            check.skip(section, section_name, "the timed epochs",
                       "no epoch after the warm-up finished before the deadline "
                       f"(warm-up: {section['warmup_epoch_s'] or time.perf_counter() - start:.0f} s)")
            section["status"] = "timed out"
            return
        median = statistics.median(epoch_s)
        section["steps_per_s"] = steps / median
        section["mixtures_per_s"] = steps * s.tune_batch / median
        section["steps_per_s_mean"] = steps * len(epoch_s) / sum(epoch_s)
        section["timed_steps"] = steps * len(epoch_s)
        if compiled and section["warmup_epoch_s"] is not None:
            section["compile_s_estimate"] = section["warmup_epoch_s"] - median  # the warm-up less one steady epoch
        if len(epoch_s) < s.tune_min_timed:
            check.skip(section, section_name, f"{s.tune_min_timed - len(epoch_s)} timed epoch(s)",
                       "the deadline came first: the rate rests on fewer epochs")
        _say(f"tuning {label}: {section['steps_per_s']:.2f} steps/s ({section['mixtures_per_s']:.1f} mixtures/s) "
             f"over {len(epoch_s)} timed epochs of {steps} steps")

    return run


# --- evaluation throughput ---------------------------------------------------------------------------

def evaluation_section(check: Check, section: dict, deadline: float, hard: float) -> None:
    from apt_uss.evaluation.evaluate import separate
    from apt_uss.models.frozen_separator import frozen_separator

    if check.separator is None:
        raise RuntimeError("the setup did not build a separator (see the setup section)")
    s = check.sizes
    sr = check.report["sections"]["setup"]["sample_rate"]
    dim = check.report["sections"]["setup"]["prompt_dim"]
    samples = int(EVAL_SECONDS * sr)
    folded = frozen_separator(check.separator)  # as evaluate_prompts runs it
    precisions = ["fp32", "bf16"]
    if check.gpu and not torch.cuda.is_bf16_supported():
        precisions = ["fp32"]
        check.skip(section, "evaluation", "bf16", "this GPU has no bf16")
    configs = [(bs, p) for bs in s.eval_batch_sizes for p in precisions]
    section.update({"backbone": check.backbone, "mixture_seconds": EVAL_SECONDS, "sample_rate": sr,
                    "path": "evaluation.separate (inference mode, BatchNorm-folded frozen separator, host<->device "
                            "copies included); bf16 = the same call under torch.autocast",
                    "rows": []})
    rng = np.random.default_rng(0)
    inputs = {bs: ((0.1 * rng.standard_normal((bs, samples))).astype(np.float32),
                   rng.standard_normal((bs, dim)).astype(np.float32)) for bs in s.eval_batch_sizes}
    reference: dict[int, np.ndarray] = {}  # each batch size's fp32 estimates, for the bf16 ones to be compared with
    too_big = False
    for i, (bs, precision) in enumerate(configs):
        what = f"batch {bs} {precision}"
        if too_big:
            check.skip(section, "evaluation", what, "a batch of this size or smaller ran out of GPU memory")
            continue
        left = deadline - time.monotonic()
        share = left / (len(configs) - i)
        if left < 0.5:
            check.skip(section, "evaluation", what, "the section's deadline passed")
            continue
        wavs, queries = inputs[bs]
        autocast = (torch.autocast(device_type=check.device.type, dtype=torch.bfloat16) if precision == "bf16"
                    else contextlib.nullcontext())
        check.reset_peak()
        try:
            with autocast:
                check.sync()
                start = time.perf_counter()
                first = separate(folded, wavs, queries, check.device)  # warm-up (kernel choice, allocations)
                check.sync()
                warm = time.perf_counter() - start
                reps, elapsed = 0, 0.0
                call_s = warm
                start = time.perf_counter()
                while reps < s.eval_max_reps and (reps < s.eval_min_reps or elapsed < s.eval_min_time_s):
                    if reps >= 1 and time.perf_counter() + call_s > start + share:
                        break
                    if time.monotonic() > hard:
                        raise SectionTimeout("section deadline passed")
                    separate(folded, wavs, queries, check.device)
                    check.sync()
                    reps += 1
                    elapsed = time.perf_counter() - start
                    call_s = elapsed / reps
        except torch.cuda.OutOfMemoryError as exc:
            too_big = True
            check.skip(section, "evaluation", what, f"out of GPU memory: {_first_line(exc)[:160]}")
            del exc
            check.free()
            continue
        row = {"batch_size": bs, "precision": precision, "warmup_s": warm, "calls": reps, "seconds": elapsed,
               "mixtures_per_s": bs * reps / elapsed if reps else None, "peak_gpu_mib": check.peak_mib()}
        if precision == "fp32":
            reference[bs] = first
        elif bs in reference:
            ref, err = reference[bs].astype(np.float64), (first.astype(np.float64) - reference[bs])
            row["snr_vs_fp32_db"] = float(10 * np.log10(np.sum(ref**2) / max(np.sum(err**2), 1e-30)))
        if reps < s.eval_min_reps:
            check.skip(section, "evaluation", f"{what}: {s.eval_min_reps - reps} of its {s.eval_min_reps} timed calls",
                       f"one call takes {call_s:.2f} s, over its {share:.1f}-s share of the section")
        section["rows"].append(row)
        if row["mixtures_per_s"]:
            _say(f"evaluation {check.backbone} {what}: {row['mixtures_per_s']:.1f} mixtures/s over {reps} calls "
                 f"({bs * reps} mixtures in {elapsed:.2f} s)"
                 + (f", peak GPU {row['peak_gpu_mib']:.0f} MiB" if row["peak_gpu_mib"] else "")
                 + (f", bf16 vs fp32 SNR {row['snr_vs_fp32_db']:.1f} dB" if "snr_vs_fp32_db" in row else ""))
    del folded


# --- the pipeline, in-process -------------------------------------------------------------------------

def _pipeline_backbone(check: Check, section: dict, allotted: float) -> str:
    if check.args.pipeline_backbone != "auto":
        return check.args.pipeline_backbone
    if not check.gpu:
        return "tiny"
    # Every model step builds the backbone anew on the CPU (4 builds), as the pipeline's steps do.
    estimate = 4 * (check.build_s if check.backbone == "paper" and check.build_s else 10.0) + 30.0
    section["paper_estimate_s"] = estimate
    if estimate <= allotted:
        return "paper"
    check.skip(section, "pipeline", "the paper backbone",
               f"an estimated {estimate:.0f} s (4 builds of {check.build_s or 10:.1f} s + 30 s) over the "
               f"{allotted:.0f} s allotted: the demo backbone ran on {check.device} instead")
    return "demo"


def pipeline_section(check: Check, section: dict, deadline: float, hard: float) -> None:
    from apt_uss.evaluation.evaluate import compare_systems
    from apt_uss.evaluation.metrics import median_sdr_by_class, per_track_medians, summarise
    from apt_uss.models.backbone import BackboneSpec
    from apt_uss.steps import data as data_steps
    from apt_uss.steps import pipeline as steps

    s = check.sizes
    backbone = _pipeline_backbone(check, section, deadline - time.monotonic())
    device = str(check.device)
    # The paper config has no checkpoint here: its SDRs check the code path on seeded random weights.
    spec = BackboneSpec(backbone, device=device, random_weights=backbone != "demo")
    work = Path(tempfile.mkdtemp(prefix="apt-uss-gpu-check-"))
    f = {k: str(work / v) for k, v in dict(dataset="dataset", splits="splits.csv", mixtures="mixtures",
                                           prompts="prompts_initial.npz", embeddings="embeddings.npz",
                                           tuned="prompts_tuned.npz", loss="tune_loss.csv",
                                           baseline="eval_baseline", apt="eval_apt").items()}
    section.update({
        "backbone": backbone, "device": device, "dataset": "synthetic", "classes": s.pipe_classes,
        "n_shot": s.pipe_n_shot, "epochs": s.pipe_epochs, "lr": TUNE_LR, "loss": "l1", "crop_rule": "random",
        "batch_size": 4, "precision": "fp32", "workdir": str(work),
        "weights": ("the shipped demo weights" if backbone == "demo" else
                    "seeded random (no checkpoint can be downloaded here): the SDRs check the code path, "
                    "not separation quality"),
        "how": "the pipeline's step functions in sequence, in-process (no KFP, MLflow or S3)",
        "stages": {},
    })
    results: dict = {}
    stages = [
        ("fetch_dataset", lambda: data_steps.fetch_dataset_step("synthetic", f["dataset"],
                                                                n_classes=s.pipe_classes, seed=0)),
        ("split_folds", lambda: data_steps.split_folds_step(f["dataset"], f["splits"], n_shot=str(s.pipe_n_shot),
                                                            seed=0, test_folds=s.pipe_test_folds)),
        ("simulate_mixtures", lambda: data_steps.simulate_mixtures_step(f["dataset"], f["splits"], f["mixtures"], seed=0,
                                                                        epochs=s.pipe_epochs,
                                                                        crop_seconds=CROP_SECONDS,
                                                                        mix_rule=MIX_RULE, crop_rule="random")),
        ("init_prompts", lambda: steps.init_prompts_step(f["dataset"], f["splits"], f["prompts"], f["embeddings"],
                                                         backbone=spec)),
        ("evaluate_baseline", lambda: steps.evaluate_step(f["dataset"], f["mixtures"], f["prompts"], f["baseline"],
                                                          "baseline", backbone=spec)),
        ("tune_prompts", lambda: steps.tune_prompts_step(f["dataset"], f["mixtures"], f["prompts"], f["tuned"],
                                                         f["loss"], backbone=spec, lr=TUNE_LR, batch_size=4,
                                                         precision="fp32", loss_function="l1")),
        ("evaluate_apt", lambda: steps.evaluate_step(f["dataset"], f["mixtures"], f["tuned"], f["apt"], "apt",
                                                     backbone=spec)),
    ]
    try:
        for i, (name, fn) in enumerate(stages):
            if time.monotonic() > deadline:
                for later, _ in stages[i:]:
                    check.skip(section, "pipeline", later, "the section's deadline passed")
                break
            _say(f"pipeline ({backbone} on {device}): {name} ...")
            check.reset_peak()
            start = time.perf_counter()
            try:
                results[name] = fn()
                check.sync()
            except SectionTimeout as exc:
                section["status"] = "timed out"
                section["stages"][name] = {"seconds": time.perf_counter() - start, "cut": True}
                check.skip(section, "pipeline", f"the rest of {name} (cut after {time.perf_counter() - start:.0f} s)",
                           str(exc))
                for later, _ in stages[i + 1:]:
                    check.skip(section, "pipeline", later, f"{name} ran past the section's hard limit")
                break
            took = time.perf_counter() - start
            stage = {"seconds": took, "peak_gpu_mib": check.peak_mib()}
            out = results[name]
            if name == "fetch_dataset":
                stage["clips"] = out["n_clips"]
                stage["clips_per_s"] = out["n_clips"] / took
            elif name == "split_folds":
                stage.update({k: int(v) for k, v in out.groupby("split").size().items()})
            elif name == "simulate_mixtures":
                stage.update(train_per_epoch=out["n_train_per_epoch"], test=out["n_test"])
            elif name == "init_prompts":
                stage["prompts_shape"] = list(out.shape)
            elif name.startswith("evaluate"):
                stage["mixtures"] = int(len(out))
                stage["mixtures_per_s"] = len(out) / took
                stage["sdr_median"] = float(out["sdr"].median()) if len(out) else None
            elif name == "tune_prompts":
                history = out[1]
                stage["steps"] = int(history["steps"].sum())
                stage["steps_per_s_incl_setup"] = stage["steps"] / took
                stage["losses"] = [float(v) for v in history["loss"]]
            section["stages"][name] = stage
            _say(f"pipeline ({backbone} on {device}): {name} done in {took:.1f} s"
                 + "".join(f", {k} {v:.2f}" if isinstance(v, float) else f", {k} {v}" for k, v in stage.items()
                           if k not in ("seconds", "losses", "peak_gpu_mib") and v is not None))
        if "evaluate_apt" in results and "evaluate_baseline" in results:
            per_mixture = compare_systems(results["evaluate_baseline"], results["evaluate_apt"])
            units = per_track_medians(per_mixture)
            per_class = median_sdr_by_class(units)
            summary = summarise(units, per_class)
            for key in ("sdr_baseline_pooled_median", "sdr_apt_pooled_median", "sdr_gain_pooled_median",
                        "sdr_mixture_pooled_median", "sdr_oracle_mask_pooled_median", "classes_improved",
                        "n_classes", "n_mixtures"):
                if key in summary:
                    section[key] = summary[key]
            _say(f"pipeline ({backbone}): pooled median SDR baseline {summary['sdr_baseline_pooled_median']:.2f} dB, "
                 f"APT {summary['sdr_apt_pooled_median']:.2f} dB over {summary['n_mixtures']} test mixtures")
        section["wall_s_stages"] = sum(st["seconds"] for st in section["stages"].values())
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


# --- the table -----------------------------------------------------------------------------------------

def _fmt(v, spec: str = ".2f", unit: str = "") -> str:
    return "-" if v is None else f"{v:{spec}}{unit}"


def table(report: dict) -> str:
    env, sections = report["environment"], report["sections"]
    lines = [f"gpu-check ({report['mode']}): {env.get('device_name', 'no GPU')}, torch {env.get('torch')}"
             f" (CUDA {env.get('torch_cuda')}), commit {str(env.get('git_commit') or '-')[:12]}, "
             f"{report.get('wall_s', 0):.0f} s of a {report['budget_s']:.0f}-s budget",
             f"GPU figures: {report['gpu_figures']}", ""]
    rows = [("section", "what", "rate", "peak GPU MiB", "status")]
    setup = sections.get("setup", {})
    rows.append(("setup", f"backbone {setup.get('backbone', '-')} build {_fmt(setup.get('build_s'), '.1f', ' s')}",
                 "", _fmt(setup.get("peak_gpu_mib"), ",.0f"), setup.get("status", "-")))
    for name in ("tuning_fp32", "tuning_bf16", "tuning_compile"):
        sec = sections.get(name, {})
        what = f"tune_prompts {sec.get('backbone', '')} {sec.get('precision', '')}"
        what += " compiled" if sec.get("compiled") else ""
        notes = []
        if sec.get("compile_s_estimate") is not None:
            notes.append(f"compile ~{sec['compile_s_estimate']:.0f} s")
        if sec.get("loss_max_rel_diff_vs_fp32_eager") is not None:
            notes.append(f"losses vs fp32 eager {sec['loss_max_rel_diff_vs_fp32_eager']:.0e}")
        what += f" ({', '.join(notes)})" if notes else ""
        rate = f"{_fmt(sec.get('steps_per_s'))} steps/s" if sec.get("steps_per_s") else "-"
        rows.append((name, what.strip(), rate, _fmt(sec.get("peak_gpu_mib"), ",.0f"), sec.get("status", "-")))
    ev = sections.get("evaluation", {})
    for row in ev.get("rows", []):
        extra = f" (vs fp32 {row['snr_vs_fp32_db']:.0f} dB)" if row.get("snr_vs_fp32_db") is not None else ""
        rows.append(("evaluation", f"separate, batch {row['batch_size']} {row['precision']}{extra}",
                     f"{_fmt(row.get('mixtures_per_s'), '.1f')} mixtures/s", _fmt(row.get("peak_gpu_mib"), ",.0f"),
                     ev.get("status", "-")))
    if not ev.get("rows"):
        rows.append(("evaluation", "separate", "-", "-", ev.get("status", "-")))
    pipe = sections.get("pipeline", {})
    for name, st in pipe.get("stages", {}).items():
        rate = ""
        if "mixtures_per_s" in st:
            rate = f"{st['mixtures_per_s']:.1f} mixtures/s"
        elif "steps_per_s_incl_setup" in st:
            rate = f"{st['steps_per_s_incl_setup']:.2f} steps/s"
        rows.append(("pipeline", f"{pipe.get('backbone')}: {name} {st['seconds']:.1f} s", rate,
                     _fmt(st.get("peak_gpu_mib"), ",.0f"), pipe.get("status", "-")))
    if "sdr_apt_pooled_median" in pipe:
        rows.append(("pipeline", "pooled median SDR baseline / APT",
                     f"{pipe['sdr_baseline_pooled_median']:.2f} / {pipe['sdr_apt_pooled_median']:.2f} dB", "",
                     pipe.get("status", "-")))
    elif not pipe.get("stages"):
        rows.append(("pipeline", "-", "-", "-", pipe.get("status", "-")))
    widths = [max(len(str(r[i])) for r in rows) for i in range(5)]
    for r in rows:
        lines.append("  ".join(str(c).rjust(w) if i == 2 else str(c).ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    lines.append(f"peak GPU memory of the check: {_fmt(report.get('peak_gpu_mib'), ',.0f', ' MiB')}")
    if report["skipped"]:
        lines.append("skipped:")
        lines += [f"  {s['section']}: {s['what']}: {s['why']}" for s in report["skipped"]]
    failed = [f"  {n}: {s['error']}" for n, s in sections.items() if s.get("status") == "failed"]
    if failed:
        lines.append("failed:")
        lines += failed
    return "\n".join(lines)


# --- main ----------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", default="", help="write the results here (rewritten after every section)")
    parser.add_argument("--dry", action="store_true", help="the short CPU dry mode even where CUDA is present")
    parser.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S,
                        help=f"seconds for all sections together (default {DEFAULT_BUDGET_S:.0f}: the whole check "
                             "under 5 minutes with start-up)")
    parser.add_argument("--device", default="cuda", help="the CUDA device (default cuda)")
    parser.add_argument("--backbone", default="", help="config of the timed sections (default: paper; dry: tiny)")
    parser.add_argument("--pipeline-backbone", default="auto",
                        help="config of the pipeline section (default auto: paper where it fits the budget, else "
                             "demo; dry: tiny)")
    parser.add_argument("--dry-compile", action="store_true",
                        help="run the torch.compile section in the dry mode too (a CPU compile takes minutes)")
    parser.add_argument("--skip", nargs="*", default=[], choices=SECTIONS, help="sections to leave out")
    args = parser.parse_args(argv)
    from apt_uss.logs import configure_logging
    from apt_uss.models.device import use_available_cores

    configure_logging()
    use_available_cores()
    gpu = not args.dry and torch.cuda.is_available()
    device = torch.device(args.device if gpu else "cpu")
    args.backbone = args.backbone or ("paper" if gpu else "tiny")
    check = Check(args, device, gpu, CUDA_SIZES if gpu else DRY_SIZES)
    if not gpu:
        _say("GPU figures NOT measured: " + ("--dry given" if args.dry else "no CUDA device visible")
             + "; running the short CPU dry mode")
    check.report["environment"] = environment(check)
    env = check.report["environment"]
    _say(f"torch {env['torch']} (CUDA {env['torch_cuda']}), device {env.get('device_name', device)}, "
         f"commit {env.get('git_commit') or '-'}, budget {args.budget_s:.0f} s")
    check.write()
    check.run_section("setup", lambda sec, deadline, hard: setup_section(check, sec, deadline, hard))
    for name in SECTIONS:
        if name == "evaluation":
            check.run_section(name, lambda sec, d, h: evaluation_section(check, sec, d, h))
        elif name == "pipeline":
            check.run_section(name, lambda sec, d, h: pipeline_section(check, sec, d, h))
        else:
            precision = "bf16" if name == "tuning_bf16" else "fp32"
            run = tuning_section(check, name, precision, compiled=name == "tuning_compile")
            if not gpu and name == "tuning_compile" and not args.dry_compile:
                sec = {"status": "skipped", "skipped": []}
                check.report["sections"][name] = sec
                check.skip(sec, name, "the whole section",
                           "torch.compile is not run in the CPU dry mode (a CPU compile takes minutes; "
                           "--dry-compile runs it)")
                check.write()
                continue
            check.run_section(name, run)
    check.write()
    print(table(check.report), flush=True)
    if args.json:
        _say(f"wrote {args.json}")
    # Exit 1 where a section failed (its error is in the table and the JSON); skips and timeouts are findings.
    return 1 if any(s.get("status") == "failed" for s in check.report["sections"].values()) else 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Straight out: a compile cut short by its hard limit may leave inductor's worker pool busy, and
    # waiting for it at exit would outlast the check's budget. Everything is written by now.
    os._exit(status)
