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
    try:
        with sf.SoundFile(path) as fh:
            if fh.samplerate != SAMPLE_RATE:
                raise AptUssError(f"{filename} is at {fh.samplerate} Hz: the dataset artifact must be at "
                                  f"{SAMPLE_RATE} Hz")
            if offset:
                fh.seek(offset)
            audio = fh.read(-1 if length is None else length, dtype="float32", always_2d=True)
    except RuntimeError as exc:  # soundfile.LibsndfileError: no such file, or not audio
        raise AptUssError(_unreadable_clip(Path(dataset_dir), filename, exc)) from None
    audio = audio.mean(axis=1)
    return audio if length is None else crop(audio, 0, length)


def clip_frames(dataset_dir: str | Path, filename: str) -> int:
    """The length in samples of an ingested clip."""
    try:
        return sf.info(str(Path(dataset_dir) / "audio" / filename)).frames
    except RuntimeError as exc:  # soundfile.LibsndfileError
        raise AptUssError(_unreadable_clip(Path(dataset_dir), filename, exc)) from None


def _unreadable_clip(dataset_dir: Path, filename: str, exc: Exception) -> str:
    """Why ``filename`` could not be read: no dataset there, a dataset without that clip, or a file that is not audio."""
    if not dataset_dir.is_dir():
        return f"the dataset folder {dataset_dir} does not exist"
    if not (dataset_dir / "audio").is_dir():
        return f"{dataset_dir} is not a dataset artifact: it has no audio/ folder"
    if not (dataset_dir / "audio" / filename).is_file():
        return (f"the dataset at {dataset_dir} has no clip {filename}: the splits and mixture tables must come from "
                "this dataset")
    return f"cannot read the clip {dataset_dir / 'audio' / filename}: {exc}"


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
