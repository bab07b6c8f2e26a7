"""Tuned prompts as an MLflow model: logged with their backbone's record, registered, loaded and served.

The model is a pyfunc holding the prompt file (``artifacts/prompts.npz``: prompts, class names, the backbone's
parameters and weights' sha256). Its input is a table of ``class_name`` and ``audio_wav_base64`` (a WAV or FLAC
file of any rate, channels and length, base64-encoded); its output, one ``audio_wav_base64`` per row: the estimate
as a 32-bit float WAV at the input's rate and channels. ``mlflow models serve -m models:/<name>/<version>
--env-manager local`` answers ``POST /invocations`` with ``{"dataframe_split": {"columns": ["class_name",
"audio_wav_base64"], "data": [[...]]}}``. The backbone's weights are not copied into the model: the demo weights
ship in the package and others are named by URI and pinned by sha256, so serving needs this package installed
(the step image, or ``pip install`` of this repository).
"""

from __future__ import annotations

import base64
import io
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from apt_uss.errors import AptUssError
from apt_uss.io.uris import redact
from apt_uss.serving.separator import PROMPTS_FILE, load_separator

log = logging.getLogger(__name__)

MODEL_NAME = "model"  # the model's name within its run: runs:/<run id>/model
INPUT_COLUMNS = ("class_name", "audio_wav_base64")
OUTPUT_COLUMN = "audio_wav_base64"


def encode_audio(audio: np.ndarray, rate: int) -> str:
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format="WAV", subtype="FLOAT")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_audio(text: str, row: int = 0) -> tuple[np.ndarray, int]:
    try:
        audio, rate = sf.read(io.BytesIO(base64.b64decode(text, validate=True)), dtype="float32", always_2d=True)
    except (ValueError, RuntimeError, sf.LibsndfileError) as exc:
        raise AptUssError(f"row {row}: audio_wav_base64 is not a base64-encoded WAV or FLAC file: {exc}") from None
    return audio, int(rate)


def separate_rows(separator, model_input: pd.DataFrame) -> pd.DataFrame:
    """The model's prediction: each row's audio separated for its class, as a base64 WAV."""
    missing = [c for c in INPUT_COLUMNS if c not in model_input.columns]
    if missing:
        raise AptUssError(f"the input lacks column(s) {', '.join(missing)}: give {', '.join(INPUT_COLUMNS)}")
    out = []
    for i, (name, text) in enumerate(zip(model_input["class_name"], model_input["audio_wav_base64"])):
        audio, rate = decode_audio(text, i)
        out.append(encode_audio(separator.separate(audio, rate, str(name)), rate))
    return pd.DataFrame({OUTPUT_COLUMN: out})


# The pyfunc class lives in its own file, logged as code (MLflow's models from code): this module, which the
# pipeline's steps import, needs no MLflow until a model is logged (the GPU check runs the steps without it).
MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")


def example_input(class_name: str, rate: int = 32000, seconds: float = 0.5) -> pd.DataFrame:
    """A short input of the model's form (a seeded noise burst), for its signature and the registry's example."""
    noise = np.random.default_rng(0).standard_normal(int(rate * seconds)).astype(np.float32) * 0.1
    return pd.DataFrame({"class_name": [class_name], "audio_wav_base64": [encode_audio(noise, rate)]})


def log_prompt_model(tracking_uri: str, run_id: str, prompts_path: str | Path, registered_name: str = "") -> dict:
    """Log ``prompts_path`` as the run's model and register it as ``registered_name`` (none: not registered).
    Returns the model's URIs and version."""
    import mlflow
    from mlflow.models import infer_signature

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    folder = Path(tempfile.mkdtemp(prefix="apt-uss-model-"))
    try:
        staged = folder / PROMPTS_FILE
        shutil.copyfile(prompts_path, staged)
        separator = load_separator(str(staged))
        example = example_input(separator.classes[0], separator.model_rate)
        signature = infer_signature(example, separate_rows(separator, example))
        with mlflow.start_run(run_id=run_id):
            info = mlflow.pyfunc.log_model(
                name=MODEL_NAME, python_model=str(MODEL_CODE), artifacts={"prompts": str(staged)},
                signature=signature, input_example=example,
                pip_requirements=_requirements(), registered_model_name=registered_name or None)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result = {"model_uri": info.model_uri, "run_model_uri": f"runs:/{run_id}/{MODEL_NAME}"}
    if registered_name:
        result.update(registered_model=registered_name, version=str(info.registered_model_version),
                      registered_uri=f"models:/{registered_name}/{info.registered_model_version}")
        log.info("model registered as %s (run %s) at %s", result["registered_uri"], run_id, redact(tracking_uri))
    return result


def _requirements() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for package in ("torch", "torchaudio", "numpy", "pandas", "soundfile", "mlflow"):
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pass
    return pins
