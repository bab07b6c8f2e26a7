"""The CPUs a step uses: its affinity capped by its container's CPU quota (cgroup v2 and v1 layouts, on fake trees)."""

from pathlib import Path

import pytest

from apt_uss.io import cpus


def _tree(root: Path, files: dict[str, str], proc: str) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "proc-cgroup").write_text(proc)
    return root / "proc-cgroup"


def test_a_v2_limit_one_level_above_the_process_group_caps_it(tmp_path):
    proc = _tree(tmp_path, {"cpu.max": "max 100000\n", "kubepods/pod1/cpu.max": "150000 100000\n",
                            "kubepods/pod1/ctr/cpu.max": "max 100000\n"}, "0::/kubepods/pod1/ctr\n")
    assert cpus.cpu_quota(tmp_path, proc) == 1.5


def test_the_smallest_v2_limit_on_the_way_up_wins(tmp_path):
    proc = _tree(tmp_path, {"pod/cpu.max": "400000 100000", "pod/ctr/cpu.max": "50000 100000"}, "0::/pod/ctr")
    assert cpus.cpu_quota(tmp_path, proc) == 0.5


def test_a_v1_quota_is_read_from_the_cpu_controller_as_a_container_sees_it(tmp_path):
    # Inside a container /proc/self/cgroup names the host's path, and the container's own group is mounted at cpu/.
    proc = _tree(tmp_path, {"cpu/cpu.cfs_quota_us": "100000", "cpu/cpu.cfs_period_us": "100000"},
                 "4:memory:/docker/abc\n1:cpu:/docker/abc\n0::/docker/abc\n")
    assert cpus.cpu_quota(tmp_path, proc) == 1.0


@pytest.mark.parametrize("files", [{}, {"cpu.max": "max 100000"},
                                   {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"},
                                   {"cpu.max": "garbage"}, {"cpu.max": "100000 0"}, {"cpu.max": "-1 100000"},
                                   {"cpu/cpu.cfs_quota_us": "50000", "cpu/cpu.cfs_period_us": "0"}])
def test_no_quota_when_none_is_set_or_it_cannot_be_read(tmp_path, files):
    assert cpus.cpu_quota(tmp_path, _tree(tmp_path, files, "1:cpu:/\n0::/\n")) is None


@pytest.mark.parametrize("quota, cores", [(None, 8), (0.5, 1), (1.5, 2), (2.0, 2), (64.0, 8)])
def test_available_cores_is_the_affinity_capped_by_the_quota_rounded_up(monkeypatch, quota, cores):
    monkeypatch.setattr(cpus.os, "sched_getaffinity", lambda pid: set(range(8)))
    monkeypatch.setattr(cpus, "cpu_quota", lambda: quota)
    assert cpus.available_cores() == cores


def test_a_runner_sharing_the_cpus_sets_a_steps_share(monkeypatch):
    monkeypatch.setattr(cpus, "available_cores", lambda: 8)
    monkeypatch.setenv(cpus.THREADS_ENV, "3")
    assert cpus.step_cores() == 3
    for value in ("", "0", "x"):
        monkeypatch.setenv(cpus.THREADS_ENV, value)
        assert cpus.step_cores() == 8
