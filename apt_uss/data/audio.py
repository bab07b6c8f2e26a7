"""Reading user audio defensively and converting it once to the models' format (32 kHz mono float)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import soundfile as sf

from apt_uss.errors import AptUssError

SAMPLE_RATE = 32000
SILENCE_PEAK = 1e-4  # below -80 dBFS peak a clip carries no usable sound


def wav_data_shortfall(path: Path) -> int:
    """Bytes the WAV header declares for its ``data`` chunk but the file lacks (0 if complete).

    libsndfile silently reads what is there, so a truncated clip would otherwise pass as
    a shorter one.
    """
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return 0
        endian = "<" if head[:4] == b"RIFF" else ">"
        size = path.stat().st_size
        while True:
            chunk = fh.read(8)
            if len(chunk) < 8:
                return 0
            cid, length = chunk[:4], struct.unpack(endian + "I", chunk[4:])[0]
            if cid == b"data":
                return max(length - (size - fh.tell()), 0) if length != 0xFFFFFFFF else 0
            fh.seek(length + (length & 1), 1)


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """(samples x channels float32, sample rate); corrupt or truncated files are errors naming the file."""
    try:
        audio, sr = sf.read(path, dtype="float32", always_2d=True)
    except sf.SoundFileError as exc:
        raise AptUssError(f"{path} is not readable audio: {exc}") from None
    if path.suffix.lower() == ".wav":
        missing = wav_data_shortfall(path)
        if missing:
            raise AptUssError(f"{path} is truncated: its header declares {missing} more bytes of audio than the file has")
    if not np.all(np.isfinite(audio)):
        raise AptUssError(f"{path} contains NaN or infinite samples")
    return audio, sr


def to_model_format(audio: np.ndarray, sr: int) -> np.ndarray:
    """Mono mean of the channels, resampled to 32 kHz with an anti-aliasing windowed-sinc filter."""
    import torch
    import torchaudio.functional as AF

    mono = torch.from_numpy(np.ascontiguousarray(audio.mean(axis=1)))
    if sr != SAMPLE_RATE and len(mono):  # an empty file stays empty (silent), at any rate
        mono = AF.resample(mono, sr, SAMPLE_RATE)
    return mono.numpy().astype(np.float32)


def is_silent(audio: np.ndarray) -> bool:
    return float(np.max(np.abs(audio), initial=0.0)) < SILENCE_PEAK


CONVERSION = ("mono (mean of channels), float32, resampled to 32000 Hz with "
              "torchaudio.functional.resample (windowed sinc, anti-aliased)")
