"""Which code made a result: the package version and, where known, the git commit and the step image."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import apt_uss

# Set where no git checkout is at hand (a step image can carry its build's commit here).
COMMIT_ENV = "APT_USS_GIT_COMMIT"
IMAGE_ENV = "APT_USS_STEP_IMAGE"


def git_commit(folder: Path | None = None) -> str:
    """``$APT_USS_GIT_COMMIT``, else the commit of the checkout holding the package (``+dirty`` with
    uncommitted changes to tracked files), else ``unknown``."""
    if os.environ.get(COMMIT_ENV):
        return os.environ[COMMIT_ENV]
    root = folder or Path(apt_uss.__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return "unknown"
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}+dirty" if dirty else head


def code_provenance() -> dict[str, str]:
    return {"apt_uss_version": apt_uss.__version__, "git_commit": git_commit(),
            "image": os.environ.get(IMAGE_ENV, "") or "none (local environment)"}
