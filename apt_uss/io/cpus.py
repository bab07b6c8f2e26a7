"""The CPUs a step may use: its CPU affinity, capped by its container's CPU quota.

A Kubernetes CPU limit (or ``docker run --cpus``) sets a CFS quota but leaves the affinity at every CPU of the node:
a step that started one thread or process per CPU it can see would run 64 of them on a 2-CPU quota and be throttled.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

THREADS_ENV = "APT_USS_THREADS"  # set by a runner that starts several steps at once (make sweep)
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _v2_quota(folder: Path) -> float | None:
    try:
        quota, period = (folder / "cpu.max").read_text().split()[:2]
        if quota == "max":
            return None
        quota, period = int(quota), int(period)
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def _v1_quota(folder: Path) -> float | None:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def cpu_quota(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """The CPU quota (in CPUs) of this process's cgroup and its parents, the smallest found; None without one.

    cgroup v2: ``cpu.max`` of the process's group (``0::<path>`` in ``/proc/self/cgroup``) and each group above it
    (a pod's limit may sit one level up); cgroup v1: ``cpu.cfs_quota_us`` of its ``cpu`` group."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    found = []
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        relative = path.strip().lstrip("/")
        if controllers == "":  # cgroup v2 (the unified hierarchy)
            folder = cgroup_root / relative
            while True:
                found.append(_v2_quota(folder))
                if folder == cgroup_root or cgroup_root not in folder.parents:
                    break
                folder = folder.parent
        elif "cpu" in controllers.split(","):
            for base in (cgroup_root / controllers, cgroup_root / "cpu"):
                found += [_v1_quota(base / relative), _v1_quota(base)]
    if not lines:  # no /proc (not Linux): the root's files, if any
        found += [_v2_quota(cgroup_root), _v1_quota(cgroup_root / "cpu")]
    quotas = [q for q in found if q]
    return min(quotas) if quotas else None


def available_cores() -> int:
    """The CPUs this process may use: its affinity (containers often allow fewer than the machine has), capped by
    its CPU quota rounded up."""
    try:
        cores = max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    quota = cpu_quota()
    return min(cores, max(math.ceil(quota), 1)) if quota else cores


def step_cores() -> int:
    """The CPUs one step should keep busy: ``$APT_USS_THREADS`` where a runner shares the CPUs among steps running
    at once, else ``available_cores()``."""
    given = os.environ.get(THREADS_ENV, "")
    return int(given) if given.isdigit() and int(given) > 0 else available_cores()
