"""Device choice: CUDA when present, CPU otherwise."""

from __future__ import annotations

import torch

from apt_uss.errors import AptUssError
from apt_uss.io.cpus import step_cores
from apt_uss.params.checks import check_device


def resolve_device(name: str = "auto") -> torch.device:
    if check_device(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise AptUssError(f"device={name!r} asked for, but no CUDA device is visible: use 'auto' or 'cpu'")
    return torch.device(name)


def use_available_cores() -> None:
    """Match torch's thread count to the CPUs this step may use (``apt_uss.io.cpus.step_cores``: the affinity capped
    by the container's CPU quota, or ``$APT_USS_THREADS`` where a runner shares the CPUs among steps)."""
    torch.set_num_threads(step_cores())


def cpu_description() -> dict:
    """The CPU a result was computed on: its model name and the instruction set torch's kernels use.

    Float32 training is deterministic on one machine, but kernels for another instruction set (AVX2
    against AVX-512, or another vendor's CPU) sum in another order, so the same recipe trains slightly
    different weights there: a card records where its figures come from.
    """
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "")
    except OSError:
        pass
    return {"cpu_model": model or "unknown", "cpu_capability": torch.backends.cpu.get_cpu_capability()}
