"""ONNX export of the separator with one class's prompt built in (``python -m apt_uss export-onnx``, ``make onnx``).

The graph takes ``mixture`` (batch, samples) float32 at the backbone's rate (32 kHz for every config) and returns
``estimate`` of the same shape; the batch is dynamic, the length is fixed at export (``seconds``: 5 s by default,
the window ``separate`` uses; pad or cut chunks to it, as ``apt_uss.evaluation.separation.separate_long`` does).
The STFT and iSTFT are convolutions (``apt_uss.models.exportable``), exported with PyTorch's TorchScript-based
exporter at opset 17. After writing, the file is run with onnxruntime on a clip and compared with the PyTorch
separator the ``separate`` command runs: the largest absolute difference is returned and written beside the file.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from apt_uss.errors import AptUssError
from apt_uss.evaluation.separation import prompt_of_class
from apt_uss.io.atomic import atomic_path
from apt_uss.models.exportable import PromptedSeparator
from apt_uss.params.checks import check_positive
from apt_uss.serving.separator import load_separator

log = logging.getLogger(__name__)

OPSET = 17
CHECK_TOLERANCE = 1e-4  # the export is refused if onnxruntime and PyTorch differ by more (they agree to ~1e-7)


def _check_clip(path: str, rate: int, length: int) -> tuple[np.ndarray, str]:
    """``length`` samples at ``rate`` of the given audio file (mono mix, its loudest window), else seeded noise."""
    if not path:
        return (np.random.default_rng(0).standard_normal(length) * 0.1).astype(np.float32), "seeded noise"
    import torchaudio.functional as AF

    try:
        audio, file_rate = sf.read(path, dtype="float32", always_2d=True)
    except (OSError, RuntimeError, sf.LibsndfileError) as exc:
        raise AptUssError(f"check audio {path} cannot be read: {exc}") from None
    mono = torch.from_numpy(audio.mean(axis=1))
    if file_rate != rate:
        mono = AF.resample(mono, file_rate, rate)
    mono = mono.numpy()
    if len(mono) < length:
        return np.pad(mono, (0, length - len(mono))).astype(np.float32), path
    energy = np.convolve(mono.astype(np.float64) ** 2, np.ones(rate // 10), mode="valid")  # 0.1-s energy
    starts = np.arange(0, len(mono) - length + 1, rate // 10)
    best = max(starts, key=lambda s: energy[s : s + length - rate // 10 + 1 : rate // 10].sum())
    return mono[best : best + length].astype(np.float32), path


def export_onnx(prompts_uri: str, class_name: str, out_path: str, backbone=None, seconds: float = 5.0,
                check_audio: str = "", tracking_uri: str = "") -> dict:
    """Write ``out_path`` (.onnx) and ``<out_path>.json`` (shapes, rate, backbone, the check); return the card."""
    import onnxruntime

    check_positive("seconds", seconds)
    out_path = Path(out_path)
    if out_path.suffix != ".onnx":
        raise AptUssError(f"output {out_path}: name it <something>.onnx")
    separator = load_separator(prompts_uri, backbone, tracking_uri=tracking_uri)
    query = torch.from_numpy(prompt_of_class(separator.prompts, separator.class_names, class_name, prompts_uri))
    rate = separator.model_rate
    length = int(round(seconds * rate))
    frozen = separator._separator.cpu()
    module = PromptedSeparator(frozen, query).eval()
    started = time.monotonic()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_path) as tmp:
        torch.onnx.export(module, (torch.zeros(1, length),), str(tmp), dynamo=False, opset_version=OPSET,
                          input_names=["mixture"], output_names=["estimate"],
                          dynamic_axes={"mixture": {0: "batch"}, "estimate": {0: "batch"}})
        clip, clip_source = _check_clip(check_audio, rate, length)
        session = onnxruntime.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        batch = np.stack([clip, clip[::-1].copy()])  # two rows: the batch axis is dynamic
        exported = session.run(None, {"mixture": batch})[0]
        with torch.inference_mode():
            reference = frozen(torch.from_numpy(batch), query[None].expand(2, -1))["wav"].numpy()
        difference = float(np.abs(exported - reference).max())
        if not difference <= CHECK_TOLERANCE:
            raise AptUssError(f"the exported graph differs from the PyTorch separator by {difference:.3g} "
                              f"(tolerance {CHECK_TOLERANCE:g}); nothing was written")
    card = {"onnx": str(out_path), "class": class_name, "prompts": prompts_uri, "opset": OPSET,
            "sample_rate": rate, "inputs": {"mixture": ["batch", length]}, "outputs": {"estimate": ["batch", length]},
            "backbone": separator.backbone.record(), "provenance": separator.provenance,
            "check": {"audio": clip_source, "rows": 2, "max_abs_difference": difference,
                      "reference_peak": float(np.abs(reference).max())},
            "bytes": out_path.stat().st_size, "seconds_to_export": round(time.monotonic() - started, 1)}
    Path(f"{out_path}.json").write_text(json.dumps(card, indent=2))
    log.info("onnx: %s (%d bytes); onnxruntime vs PyTorch on %s: max |diff| %.3g", out_path, card["bytes"],
             clip_source, difference)
    return card
