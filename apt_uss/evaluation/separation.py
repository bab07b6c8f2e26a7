"""Separating one class out of a recording of any length with a prompt (the windows, their cross-fade and the
checks of ``python -m apt_uss separate``; ``apt_uss.serving`` applies them to files and waveforms)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from apt_uss.errors import AptUssError
from apt_uss.params.checks import check_finite, check_positive

log = logging.getLogger(__name__)

CHUNK_SECONDS = 5.0  # the length of the test mixtures the prompts are scored on
OVERLAP = 0.5
WINDOW_FLOOR = 1e-2  # keeps the first and last samples, covered by one chunk only, finite


def _chunk_starts(length: int, chunk: int, hop: int) -> list[int]:
    if length <= chunk:
        return [0]
    starts = list(range(0, length - chunk + 1, hop))
    if starts[-1] + chunk < length:
        starts.append(length - chunk)  # a last chunk flush with the end
    return starts


@torch.inference_mode()
def separate_long(separator, audio: np.ndarray, query: np.ndarray, chunk: int, overlap: float = OVERLAP,
                  device="cpu", batch_size: int = 4) -> np.ndarray:
    """The estimate of the queried source in the mono ``audio`` (samples,), same length.

    The recording is cut into ``chunk``-sample windows overlapping by ``overlap``; the
    estimates are cross-faded with a Hann window, weighted by the window sum, so the
    seams do not click and every sample has unit gain.
    """
    if not 0.0 <= overlap < 1.0:
        raise AptUssError(f"overlap={overlap!r} is not valid: use 0 <= overlap < 1")
    audio = np.asarray(audio, np.float32)
    length = len(audio)
    chunk = min(int(chunk), length) if length else 0
    if chunk == 0:
        return audio.copy()
    hop = max(1, int(round(chunk * (1.0 - overlap))))
    starts = _chunk_starts(length, chunk, hop)
    window = np.maximum(np.hanning(chunk + 2)[1:-1], WINDOW_FLOOR).astype(np.float64) if len(starts) > 1 \
        else np.ones(chunk)
    out, weight = np.zeros(length), np.zeros(length)
    cond = torch.from_numpy(np.asarray(query, np.float32)[None]).to(device)
    started = time.monotonic()
    for first in range(0, len(starts), batch_size):
        group = starts[first : first + batch_size]
        wav = torch.from_numpy(np.stack([audio[s : s + chunk] for s in group])).to(device)
        estimates = separator(wav, cond.expand(len(group), -1))["wav"].float().cpu().numpy()
        for s, est in zip(group, estimates):
            out[s : s + chunk] += window * est
            weight[s : s + chunk] += window
        done = min(first + batch_size, len(starts))
        if len(starts) > batch_size:
            log.info("separate: %d/%d chunks (%.1f chunks/s)", done, len(starts), done / (time.monotonic() - started))
    return (out / weight).astype(np.float32)


def prompt_of_class(prompts: np.ndarray, class_names: np.ndarray, name: str, source: str) -> np.ndarray:
    names = [str(n) for n in class_names]
    if not name:
        raise AptUssError(f"give the class to separate (--class): the prompts of {source} have {', '.join(names)}")
    if name not in names:
        raise AptUssError(f"class {name!r} is not in the prompts of {source}: it has {', '.join(names)}")
    return prompts[names.index(name)]


def check_separate_options(input_path, output_path, chunk_seconds: float = CHUNK_SECONDS,
                           overlap: float = OVERLAP) -> None:
    """The arguments of ``python -m apt_uss separate`` that need no model, checked before the model loads."""
    check_positive("chunk_seconds", chunk_seconds)
    if not 0.0 <= check_finite("overlap", overlap) < 1.0:
        raise AptUssError(f"overlap={overlap!r} is not valid: use 0 <= overlap < 1")
    check_input_file(input_path)
    check_output_format(output_path)


def check_input_file(input_path) -> None:
    path = Path(input_path)
    if not path.exists():
        raise AptUssError(f"input audio file {input_path} does not exist")
    if not path.is_file():
        raise AptUssError(f"input audio file {input_path} is not a file")


def check_output_format(output_path) -> str:
    output_path = Path(output_path)
    out_format = output_path.suffix.lstrip(".").upper()
    if out_format not in sf.available_formats():  # before the work, not after it
        raise AptUssError(f"output {output_path}: unknown audio format {output_path.suffix!r}: use .wav or .flac")
    return out_format
