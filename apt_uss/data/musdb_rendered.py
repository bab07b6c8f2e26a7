"""``musdb18_rendered``: a MUSDB18-HQ-layout set of songs rendered from generated MIDI with recorded instruments.

Each track is a short generated song (tempo, key, chord progression and arrangement drawn from the
``corpus_track`` stream) whose four stems are rendered separately by fluidsynth from the FluidR3 GM
SoundFont (``fluid-soundfont-gm``, MIT), at 44.1 kHz stereo like MUSDB18-HQ:
- ``drums``: the recorded standard drum kit (kick, snare, hi-hat, crash, fills);
- ``bass``: a sampled bass guitar or double bass playing the chord roots;
- ``other``: chords on a sampled piano, electric piano, guitar, organ or string ensemble;
- ``vocals``: a sung stand-in, not words: a melody on the SoundFont's sampled human voices ("choir aahs" or
  "voice oohs", recordings of singers), absent in the intro as vocals often are.
``mixture.wav`` is the exact sum of the four stems. Training and test tracks use different stream keys.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from apt_uss.data.fluidsynth import render_midi
from apt_uss.data.midi import DRUM_CHANNEL, Note
from apt_uss.data.streams import stream

log = logging.getLogger(__name__)

NAME = "musdb18_rendered"
RATE = 44100
TRACKS = {"train": 12, "test": 8}
TRACK_SECONDS = 30.0
BASS_PROGRAMS = (32, 33, 34, 35)  # acoustic, finger, pick, fretless bass
OTHER_PROGRAMS = (0, 4, 16, 25, 27, 48)  # piano, electric piano, organ, steel and clean guitar, strings
VOCAL_PROGRAMS = (52, 53)  # choir aahs, voice oohs: sampled singers
KICK, SNARE, HIHAT, CRASH = 36, 38, 42, 49
FILL_TOMS = (50, 48, 45, 43)  # high, hi-mid, low, high floor tom
PROGRESSIONS = ((0, 4, 5, 3), (0, 3, 4, 0), (5, 3, 0, 4), (0, 5, 3, 4), (0, 3, 5, 4))
MAJOR = (0, 2, 4, 5, 7, 9, 11)
STEM_CHANNELS = {"bass": 1, "other": 2, "vocals": 3, "drums": DRUM_CHANNEL}


def _triad(root_key: int, degree: int) -> list[int]:
    return [root_key + MAJOR[(degree + i) % 7] + 12 * ((degree + i) // 7) for i in (0, 2, 4)]


def song(rng: np.random.Generator, seconds: float = TRACK_SECONDS) -> tuple[dict[str, list[Note]], dict[int, int]]:
    """One generated song: notes per stem, and the GM program of each melodic channel."""
    beat = 60.0 / float(rng.uniform(84, 132))
    bar = 4 * beat
    n_bars = int((seconds - 1.0) // bar)
    root = 48 + int(rng.integers(0, 12))
    progression = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
    programs = {1: int(rng.choice(BASS_PROGRAMS)), 2: int(rng.choice(OTHER_PROGRAMS)),
                3: int(rng.choice(VOCAL_PROGRAMS))}
    strum = rng.random() < 0.5
    intro_bars = int(rng.integers(1, 3))
    stems: dict[str, list[Note]] = {k: [] for k in STEM_CHANNELS}
    melody_key = root + 12
    for b in range(n_bars):
        t0 = b * bar
        chord = _triad(root, progression[b % 4])
        # drums: kick on 1 and 3, snare on 2 and 4, hi-hat eighths, a crash every 4 bars, a tom fill before it
        for i in range(8):
            t = t0 + i * beat / 2
            stems["drums"].append(Note(t, t + 0.1, HIHAT, int(rng.integers(50, 90)), DRUM_CHANNEL))
        for i in range(4):
            piece = KICK if i % 2 == 0 else SNARE
            stems["drums"].append(Note(t0 + i * beat, t0 + i * beat + 0.1, piece, int(rng.integers(85, 127)),
                                       DRUM_CHANNEL))
        if b % 4 == 0:
            stems["drums"].append(Note(t0, t0 + 0.1, CRASH, int(rng.integers(80, 120)), DRUM_CHANNEL))
        if b % 4 == 3 and rng.random() < 0.5:
            for i in range(4):
                t = t0 + 3 * beat + i * beat / 4
                stems["drums"].append(Note(t, t + 0.1, FILL_TOMS[i], 100, DRUM_CHANNEL))
        # bass: the chord's root, an octave below, on beats 1 and 3 (and the "and" of 4 sometimes)
        bass_key = chord[0] - 24
        for i in (0, 2):
            stems["bass"].append(Note(t0 + i * beat, t0 + (i + 1.8) * beat, bass_key, int(rng.integers(80, 115)), 1))
        if rng.random() < 0.4:
            stems["bass"].append(Note(t0 + 3.5 * beat, t0 + 3.95 * beat, bass_key + 7, 90, 1))
        # other: the triad held for the bar, or strummed on each beat
        for i in range(4 if strum else 1):
            start, end = t0 + i * beat, t0 + ((i + 0.9) * beat if strum else 3.9 * beat)
            for key in chord:
                stems["other"].append(Note(start, end, key + 12 * (key < 55), int(rng.integers(55, 95)), 2))
        # vocals: from the end of the intro, two-bar phrases of chord tones and steps, with rests
        if b >= intro_bars and (b - intro_bars) % 4 != 3:
            t = t0
            while t < t0 + bar - 0.2:
                length = beat * float(rng.choice([0.5, 1.0, 1.0, 1.5, 2.0]))
                target = int(rng.choice(chord)) + 12
                melody_key = int(np.clip(target if rng.random() < 0.6 else melody_key + int(rng.integers(-2, 3)),
                                         57, 79))
                if rng.random() < 0.85:
                    stems["vocals"].append(Note(t, min(t + 0.95 * length, t0 + bar), melody_key,
                                                int(rng.integers(70, 110)), 3))
                t += length
    return stems, programs


def build_musdb_rendered(soundfont: Path, out: Path, workdir: Path, seed: int = 0,
                         tracks: dict[str, int] = TRACKS, seconds: float = TRACK_SECONDS) -> dict:
    """Write ``out/<subset>/<track>/{mixture,drums,bass,other,vocals}.wav``; returns what was built."""
    started, done = time.monotonic(), 0
    total = sum(tracks.values())
    programs_used = {}
    for offset, (subset, count) in zip((0, 1000), tracks.items()):
        for i in range(count):
            stems, programs = song(stream("corpus_track", seed, offset + i), seconds)
            name = f"Rendered - {subset.title()} {i:02d}"
            audio = {stem: render_midi(soundfont, notes, {STEM_CHANNELS[stem]: programs[STEM_CHANNELS[stem]]}
                                       if stem != "drums" else {}, seconds, workdir, f"{subset}{i}-{stem}",
                                       sample_rate=RATE)
                     for stem, notes in stems.items()}
            scale = 0.9 / max(float(np.abs(sum(audio.values())).max()), 1e-6)
            # A stem louder than the mixture (where stems cancel) is clipped, never wrapped around; the mixture
            # stays the sum of the stems as written.
            quantised = {k: np.clip(np.round(v * scale * 32767), -32768, 32767).astype(np.int32)
                         for k, v in audio.items()}
            folder = out / subset / name
            folder.mkdir(parents=True)
            for stem, q in quantised.items():
                sf.write(folder / f"{stem}.wav", q.astype(np.int16), RATE, subtype="PCM_16")
            mixture = sum(quantised.values())
            sf.write(folder / "mixture.wav", np.clip(mixture, -32768, 32767).astype(np.int16), RATE,
                     subtype="PCM_16")
            programs_used[f"{subset}/{name}"] = {"bass": programs[1], "other": programs[2], "vocals": programs[3]}
            done += 1
            log.info("musdb18_rendered: %d/%d tracks (%.2f tracks/s)", done, total, done / (time.monotonic() - started))
    return {"tracks": {k: v for k, v in tracks.items()}, "track_seconds": seconds, "sample_rate": RATE,
            "channels": 2, "programs": programs_used,
            "vocals": "a sung stand-in: melodies on the SoundFont's sampled singers (choir aahs, voice oohs), no words"}
