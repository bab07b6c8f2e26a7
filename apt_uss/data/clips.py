"""Access to the dataset artifact's audio: whole clips kept in memory, or segments read from disk.

ESC-50 clips are short and reused every epoch, so they are loaded once; MUSDB18 tracks
are minutes long, so only the 2-s segments a step needs are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import soundfile as sf

from apt_uss.data.audio import SAMPLE_RATE
from apt_uss.errors import AptUssError


def crop(signal: np.ndarray, offset: int, length: int | None) -> np.ndarray:
    """``length`` samples from ``offset``; zero-padded if the clip is shorter."""
    if length is None:
        return signal[offset:]
    out = signal[offset : offset + length]
    if len(out) < length:
        out = np.pad(out, (0, length - len(out)))
    return out


def read_clip(dataset_dir: str | Path, filename: str, offset: int = 0, length: int | None = None) -> np.ndarray:
    """An ingested clip (or ``length`` samples of it from ``offset``): 32 kHz mono float32."""
    path = Path(dataset_dir) / "audio" / filename
    with sf.SoundFile(path) as fh:
        if fh.samplerate != SAMPLE_RATE:
            raise AptUssError(f"{filename} is at {fh.samplerate} Hz: the dataset artifact must be at {SAMPLE_RATE} Hz")
        if offset:
            fh.seek(offset)
        audio = fh.read(-1 if length is None else length, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    return audio if length is None else crop(audio, 0, length)


class ClipStore:
    """``segment(name, offset, length)`` from preloaded arrays, else straight from the file."""

    def __init__(self, dataset_dir: str | Path | None = None, arrays: Mapping[str, np.ndarray] | None = None):
        self.dataset_dir = dataset_dir
        self.arrays = arrays if arrays is not None else {}

    def preload(self, names) -> "ClipStore":
        for name in dict.fromkeys(names):
            if name not in self.arrays:
                self.arrays[name] = read_clip(self.dataset_dir, name)
        return self

    def segment(self, name: str, offset: int = 0, length: int | None = None) -> np.ndarray:
        if name in self.arrays:
            return crop(self.arrays[name], offset, length)
        if self.dataset_dir is None:
            raise KeyError(name)
        return read_clip(self.dataset_dir, name, offset, length)


def as_store(clips) -> ClipStore:
    return clips if isinstance(clips, ClipStore) else ClipStore(arrays=clips)
