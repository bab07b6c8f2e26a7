"""What the tests that run ``python -m pipelines.run_local`` share: the tiny configuration (seconds of model work:
most of a run is its ten steps' start-up), the environment a run gets and the run itself."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY_PIPELINE = ["--backbone", "tiny", "--random-weights", "--n-classes", "3", "--epochs", "2", "--n-shot", "5",
                 "--seed", "0"]


def run_environment(s3: dict, state: Path, **extra: str) -> dict:
    """The caller's environment without its MLflow and AWS settings, pointed at the test S3 server ``s3`` and a state
    folder of its own (``APT_USS_HOME``), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AWS_"))}
    env.update(s3, APT_USS_HOME=str(state), **extra)
    return env


def run_local(args: list[str], env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.run_local", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def executor_inputs_folded(out: str) -> bool:
    """A local run's output shows each of its (at least ten) tasks' executor input as one line, not its JSON."""
    return out.count("Got executor_input:") == out.count("lines not shown") >= 10 and '"parameterValues"' not in out
