"""Rendering MIDI with fluidsynth's command line: what the real-audio corpus and the rendered MUSDB18 set share."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from apt_uss.data.audio import SAMPLE_RATE
from apt_uss.data.midi import Note, write_midi
from apt_uss.errors import AptUssError


def fluidsynth_version() -> str:
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise AptUssError("fluidsynth is not installed: the corpus is rendered with it "
                          "(apt-get install fluidsynth; `make corpus` installs it when run as root)")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False).stdout
    words = out.split()
    return words[words.index("version") + 1] if "version" in words else "unknown"


def render_midi(soundfont: Path, notes: list[Note], programs: dict[int, int], seconds: float, workdir: Path,
                name: str, sample_rate: int = SAMPLE_RATE, silences_s: list[float] = ()) -> np.ndarray:
    """``notes`` rendered by fluidsynth (reverb and chorus off, no dither): (samples, 2) float32, ``seconds`` long."""
    midi = write_midi(workdir / f"{name}.mid", notes, programs, silences_s)
    raw = workdir / f"{name}.raw"
    command = ["fluidsynth", "-n", "-i", "-q", "-R", "0", "-C", "0", "-g", "0.5", "-r", str(sample_rate),
               "-O", "float", "-T", "raw", "-E", "little", "-F", str(raw), str(soundfont), str(midi)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not raw.is_file():
        raise AptUssError(f"fluidsynth failed on {name}: {done.stderr.strip()[-500:]}")
    audio = np.fromfile(raw, dtype="<f4").reshape(-1, 2)
    raw.unlink()
    midi.unlink()
    n = int(round(seconds * sample_rate))
    return np.pad(audio, ((0, max(0, n - len(audio))), (0, 0)))[:n]
