"""The Python API for separation: tuned prompts with the frozen backbone they were tuned for.

    from apt_uss.serving import load_separator

    separator = load_separator("models:/apt-uss-debian_sounds/1")   # or a prompt file: path, s3://, https://
    estimate = separator.separate(waveform, sample_rate, "violin")  # same rate, channels and length

A waveform of any length, rate and channel count goes in; each channel is resampled to the model's rate,
separated in overlapping 5-s windows (the length the prompts were scored on) and resampled back. Memory
grows with the recording's length through the input and output arrays and, one channel at a time, its
resampled copy and a float64 accumulator; the model sees 4 windows at a time.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from apt_uss.errors import AptUssError
from apt_uss.evaluation.separation import (
    CHUNK_SECONDS,
    OVERLAP,
    check_input_file,
    check_output_format,
    prompt_of_class,
    separate_long,
)
from apt_uss.io.download import fetch_uri
from apt_uss.io.tracking import resolve_tracking_uri
from apt_uss.io.uris import redact
from apt_uss.method.prompts import check_same_backbone, load_prompt_backbone, load_prompt_provenance, load_prompts
from apt_uss.models.backbone import BackboneSpec
from apt_uss.models.device import resolve_device
from apt_uss.models.frozen_separator import frozen_separator
from apt_uss.params.checks import check_finite, check_positive

log = logging.getLogger(__name__)

MODEL_SCHEMES = ("models:/", "runs:/")
PROMPTS_FILE = "prompts.npz"  # inside a logged model's artifacts
# Sample formats that hold a peak above full scale; the others (integer PCM and its relatives) clip it.
UNCLIPPED_SUBTYPES = ("FLOAT", "DOUBLE", "VORBIS", "OPUS", "MPEG")


@dataclass
class PromptSeparator:
    """Prompts (one per class) and the frozen backbone that separates with them."""

    prompts: np.ndarray
    class_names: list[str]
    backbone: BackboneSpec
    source: str
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self):
        model = self.backbone.load()
        if self.prompts.shape[1] != model.cfg.embed_dim:
            raise AptUssError(f"the prompts of {self.source} are {self.prompts.shape[1]}-d, but backbone "
                              f"{self.backbone.name!r} takes {model.cfg.embed_dim}-d queries")
        self.model_rate = int(model.cfg.sample_rate)
        # The separator's STFT pads each window by half its FFT, which must be shorter than the window.
        self.min_samples = int(model.cfg.separator.n_fft)
        self.provenance = model.provenance
        self._separator = frozen_separator(model.separator.to(self.device))

    @property
    def classes(self) -> list[str]:
        return list(self.class_names)

    def separate(self, waveform, sample_rate: int, class_name: str, chunk_seconds: float = CHUNK_SECONDS,
                 overlap: float = OVERLAP) -> np.ndarray:
        """The estimate of ``class_name`` in ``waveform`` ((samples,) or (samples, channels), any rate), float32
        at the input's rate, channels and length."""
        import torchaudio.functional as AF

        audio = np.asarray(waveform, dtype=np.float32)
        if audio.ndim not in (1, 2) or audio.size == 0:
            raise AptUssError(f"waveform of shape {audio.shape} is not valid: give (samples,) or (samples, channels)")
        if not np.isfinite(audio).all():
            raise AptUssError("the waveform holds NaN or infinite samples")
        rate = int(check_positive("sample_rate", sample_rate, integer=True))
        check_positive("chunk_seconds", chunk_seconds)
        if not 0.0 <= check_finite("overlap", overlap) < 1.0:
            raise AptUssError(f"overlap={overlap!r} is not valid: use 0 <= overlap < 1")
        chunk = int(chunk_seconds * self.model_rate)
        if chunk < self.min_samples:
            raise AptUssError(f"chunk_seconds={chunk_seconds!r} is too short: backbone {self.backbone.name!r} "
                              f"separates windows of at least {self.min_samples / self.model_rate:.3g} s")
        query = prompt_of_class(self.prompts, self.class_names, class_name, self.source)
        frames = audio if audio.ndim == 2 else audio[:, None]
        out = np.zeros(frames.shape, np.float32)
        for c in range(frames.shape[1]):
            mono = torch.from_numpy(np.ascontiguousarray(frames[:, c]))
            if rate != self.model_rate:
                mono = AF.resample(mono, rate, self.model_rate)
            length = len(mono)
            if length < self.min_samples:  # a recording shorter than one window: separated with silence after it
                mono = torch.nn.functional.pad(mono, (0, self.min_samples - length))
            estimate = separate_long(self._separator, mono.numpy(), query, chunk, overlap, self.device)[:length]
            del mono
            if rate != self.model_rate:
                estimate = AF.resample(torch.from_numpy(estimate), self.model_rate, rate).numpy()
            n = min(len(estimate), len(out))
            out[:n, c] = estimate[:n]
        return out if audio.ndim == 2 else out[:, 0]


# Options that name other weights: given any of them, the backbone is the one they describe, not the recorded one.
WEIGHT_OPTIONS = ("backbone", "sed_checkpoint_uri", "separator_checkpoint_uri")


def backbone_for(recorded: dict, backbone: BackboneSpec | dict | str | None) -> BackboneSpec:
    """The backbone to separate with: ``backbone`` where it names weights (a spec, a config name, or a dict with a
    config name or a checkpoint), else the one the prompts record (the demo backbone where they record none), with
    the dict's other options (device, seed, random weights) on top."""
    if isinstance(backbone, (BackboneSpec, str)):
        return BackboneSpec.of(backbone)
    given = dict(backbone or {})
    if any(k in given for k in WEIGHT_OPTIONS):
        return BackboneSpec.of(given)
    return BackboneSpec.of({**recorded, **given})


def load_separator(uri: str, backbone: BackboneSpec | dict | str | None = None, tracking_uri: str = "") \
        -> PromptSeparator:
    """A separator from a prompt file (path, ``file://``, ``https://``, ``s3://``) or a logged model
    (``models:/<name>/<version>``, ``runs:/<run id>/model``).

    ``backbone`` defaults to the one the prompts record (see ``backbone_for``); a backbone with other weights than
    the recorded ones is an error naming both.
    """
    download = Path(tempfile.mkdtemp(prefix="apt-uss-model-")) if uri.startswith(MODEL_SCHEMES) else None
    try:
        prompts_path = _model_prompts(uri, tracking_uri, download) if download else fetch_uri(uri, what="prompts")
        prompts, _, names = load_prompts(prompts_path)
        recorded, provenance = load_prompt_backbone(prompts_path), load_prompt_provenance(prompts_path)
    finally:
        if download is not None:  # everything is read: the model's files are not needed any more
            shutil.rmtree(download, ignore_errors=True)
    spec = backbone_for(recorded, backbone)
    check_same_backbone(provenance, spec.provenance(), uri)
    return PromptSeparator(prompts, [str(n) for n in names], spec, uri, resolve_device(spec.device))


def separate_file(separator: PromptSeparator, class_name: str, input_path, output_path,
                  chunk_seconds: float = CHUNK_SECONDS, overlap: float = OVERLAP) -> dict:
    """Separate ``class_name`` out of each channel of ``input_path``; write ``output_path`` with the input's rate,
    channels and length (32-bit float where an integer format would clip the estimate's peaks)."""
    output_path = Path(output_path)
    out_format = check_output_format(output_path)
    check_input_file(input_path)
    try:
        info = sf.info(str(input_path))
        audio, rate = sf.read(str(input_path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise AptUssError(f"cannot read {input_path} as audio: {exc}") from None
    result = separator.separate(audio, rate, class_name, chunk_seconds, overlap)
    subtype = info.subtype if sf.check_format(out_format, info.subtype) else sf.default_subtype(out_format)
    peak = float(np.abs(result).max())
    if peak >= 1.0 and not subtype.startswith(UNCLIPPED_SUBTYPES):
        if not sf.check_format(out_format, "FLOAT"):
            raise AptUssError(f"output {output_path}: the estimate peaks at {peak:.3f}, above full scale, and "
                              f"{out_format} samples cannot hold that without clipping: write a .wav instead "
                              f"(32-bit float)")
        subtype = "FLOAT"
        log.info("separate: the estimate peaks above full scale; writing 32-bit float samples")
    output_path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(output_path), result, rate, subtype=subtype)
    return {"input": str(input_path), "output": str(output_path), "class": class_name, "sample_rate": rate,
            "channels": int(audio.shape[1]), "samples": int(len(audio)), "backbone": separator.backbone.name}


def _model_prompts(uri: str, tracking_uri: str, target: Path) -> Path:
    """The prompt file inside a logged model, downloaded into ``target`` (the model's folder is small: the prompts
    and MLflow's files)."""
    import mlflow

    tracking = resolve_tracking_uri(tracking_uri)
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(tracking)
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(target)))
    except Exception as exc:  # MLflow raises many kinds: a missing model, version or run, an unreachable store
        text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise AptUssError(f"cannot load model {uri} from {redact(tracking)}: {text}") from None
    found = sorted(local.rglob(PROMPTS_FILE))
    if not found:
        raise AptUssError(f"{uri} is not an apt-uss model: it holds no {PROMPTS_FILE}")
    return found[0]
