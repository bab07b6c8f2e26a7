"""Where the project keeps local state: the MLflow store, the S3 server's data, KFP outputs, caches."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """Project-local state: ``$APT_USS_HOME`` or ``./.apt-uss``."""
    return Path(os.environ.get("APT_USS_HOME", ".apt-uss")).resolve()
