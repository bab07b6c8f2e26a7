"""``debian_sounds``: a real-audio corpus built offline and deterministically from a Debian package.

Source: ``fluid-soundfont-gm`` (Frank Wen's FluidR3 GM SoundFont, MIT license): recordings of
real instruments and drum kits, sampled across their range. Each class is one General MIDI
instrument (bank 0 program) or one drum-kit piece (bank 128 key); a clip is a generated 5-s
phrase of that class (notes, rhythm, dynamics drawn from the ``corpus_clip`` stream) rendered
by fluidsynth at 32 kHz with reverb and chorus off. The label comes from the source: the
instrument program or the drum piece.

Two parts, disjoint in classes and in recordings (no SoundFont sample is played by two classes):
- ``debian_sounds``: 10 *unseen* classes in ESC-50's layout (5 folds of 8 clips per class), the
  evaluation dataset the pipeline fetches by name (``DATASET=debian_sounds``);
- ``debian_sounds_seen``: up to 128 *seen* classes of 10 clips, what the demo backbone trains on
  (as AudioSet was to ESC-50 in the paper).

The package is pinned by version and sha256. Packages reserved for an independent evaluation of
the project (``FORBIDDEN_PACKAGES``) are refused by name.
"""

from __future__ import annotations

import fnmatch
import gzip
import io
import json
import logging
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from apt_uss.data import musdb_rendered
from apt_uss.data.archive import extract_archive
from apt_uss.data.audio import SAMPLE_RATE
from apt_uss.data.fluidsynth import fluidsynth_version, render_midi
from apt_uss.data.midi import DRUM_CHANNEL, Note
from apt_uss.data.soundfont import SoundFontTables, read_soundfont
from apt_uss.data.streams import stream
from apt_uss.errors import AptUssError
from apt_uss.io.download import cache_dir, fetch_uri, sha256_file

log = logging.getLogger(__name__)

NAME = "debian_sounds"
SEEN_NAME = "debian_sounds_seen"
CLIP_SECONDS = 5.0
FOLDS, CLIPS_PER_FOLD = 5, 8
SEEN_CLIPS = 10
MAX_SEEN_CLASSES = 128  # the demo SED's head
PEAK = 0.9  # every clip is scaled to this peak (16-bit PCM)
# The corpus's format: bump it whenever the class plan, the phrases or the rendering change, so a build made by
# older code is not taken as up to date.
CORPUS_FORMAT = 2

# Audio of these packages is reserved for an independent evaluation of the project: never used.
FORBIDDEN_PACKAGES = ("0ad-data", "megaglest-data", "tuxpaint-stamps-*", "widelands-data", "hedgewars-data",
                      "wesnoth-*-data", "openarena-data", "scorched3d-data", "warmux-data")


@dataclass(frozen=True)
class DebianSource:
    package: str
    version: str
    sha256: str  # of the .deb, from the Debian archive's Packages index
    license: str
    soundfont: str  # the file inside the package


SOUNDFONT_SOURCE = DebianSource(
    package="fluid-soundfont-gm", version="3.1-5.3",
    sha256="6f531493ac4e4d9772fd96b2488ea1790af81c196135fbdd25997da0781fc60e",
    license="MIT (FluidR3 GM, Frank Wen; usr/share/doc/fluid-soundfont-gm/copyright)",
    soundfont="usr/share/sounds/sf2/FluidR3_GM.sf2")

GM_PROGRAMS = (
    "acoustic_grand_piano bright_acoustic_piano electric_grand_piano honky_tonk_piano electric_piano_1 "
    "electric_piano_2 harpsichord clavinet celesta glockenspiel music_box vibraphone marimba xylophone "
    "tubular_bells dulcimer drawbar_organ percussive_organ rock_organ church_organ reed_organ accordion "
    "harmonica tango_accordion acoustic_guitar_nylon acoustic_guitar_steel electric_guitar_jazz "
    "electric_guitar_clean electric_guitar_muted overdriven_guitar distortion_guitar guitar_harmonics "
    "acoustic_bass electric_bass_finger electric_bass_pick fretless_bass slap_bass_1 slap_bass_2 synth_bass_1 "
    "synth_bass_2 violin viola cello contrabass tremolo_strings pizzicato_strings orchestral_harp timpani "
    "string_ensemble_1 string_ensemble_2 synth_strings_1 synth_strings_2 choir_aahs voice_oohs synth_voice "
    "orchestra_hit trumpet trombone tuba muted_trumpet french_horn brass_section synth_brass_1 synth_brass_2 "
    "soprano_sax alto_sax tenor_sax baritone_sax oboe english_horn bassoon clarinet piccolo flute recorder "
    "pan_flute blown_bottle shakuhachi whistle ocarina lead_square lead_sawtooth lead_calliope lead_chiff "
    "lead_charang lead_voice lead_fifths lead_bass_and_lead pad_new_age pad_warm pad_polysynth pad_choir "
    "pad_bowed pad_metallic pad_halo pad_sweep fx_rain fx_soundtrack fx_crystal fx_atmosphere fx_brightness "
    "fx_goblins fx_echoes fx_sci_fi sitar banjo shamisen koto kalimba bagpipe fiddle shanai tinkle_bell agogo "
    "steel_drums woodblock taiko_drum melodic_tom synth_drum reverse_cymbal guitar_fret_noise breath_noise "
    "seashore bird_tweet telephone_ring helicopter applause gunshot").split()
GM_DRUMS = dict(enumerate((
    "acoustic_bass_drum bass_drum_1 side_stick acoustic_snare hand_clap electric_snare low_floor_tom "
    "closed_hi_hat high_floor_tom pedal_hi_hat low_tom open_hi_hat low_mid_tom hi_mid_tom crash_cymbal_1 "
    "high_tom ride_cymbal_1 chinese_cymbal ride_bell tambourine splash_cymbal cowbell crash_cymbal_2 vibraslap "
    "ride_cymbal_2 hi_bongo low_bongo mute_hi_conga open_hi_conga low_conga high_timbale low_timbale "
    "high_agogo low_agogo cabasa maracas short_whistle long_whistle short_guiro long_guiro claves "
    "hi_wood_block low_wood_block mute_cuica open_cuica mute_triangle open_triangle").split(), start=35))

# The evaluation (unseen) classes, fixed before any result: ten familiar sounds of different families
# (bowed, brass, wind, plucked, keyboard, mallet, voice, animal, hand, metal percussion).
UNSEEN = ("violin", "trumpet", "flute", "acoustic_guitar_nylon", "church_organ", "marimba", "choir_aahs",
          "bird_tweet", "hand_clap", "cowbell")

# Comfortable MIDI key range per GM family (program // 8), with per-program exceptions.
_FAMILY_RANGE = {0: (45, 84), 1: (60, 96), 2: (43, 79), 3: (40, 76), 4: (28, 55), 5: (48, 84), 6: (48, 81),
                 7: (48, 79), 8: (50, 81), 9: (60, 93), 10: (48, 84), 11: (48, 81), 12: (48, 81), 13: (48, 81),
                 14: (45, 76), 15: (55, 67)}
_PROGRAM_RANGE = {40: (55, 93), 41: (48, 84), 42: (36, 69), 43: (28, 52), 47: (40, 55), 57: (40, 72),
                  58: (28, 58), 67: (36, 69), 70: (34, 65), 72: (74, 100), 110: (55, 88), 116: (36, 60)}
_POLYPHONIC_FAMILIES = {0, 2, 3, 5, 6, 11}


@dataclass(frozen=True)
class SoundClass:
    name: str
    bank: int  # 0: instrument, 128: drum kit
    program: int  # the GM program (instrument) or the drum key (drum kit)
    index: int  # its position in the corpus's plan: the key of its clips' random streams

    @property
    def is_drum(self) -> bool:
        return self.bank == 128

    @property
    def keys(self) -> range:
        if self.is_drum:
            return range(self.program, self.program + 1)
        lo, hi = _PROGRAM_RANGE.get(self.program, _FAMILY_RANGE[self.program // 8])
        return range(lo, hi + 1)

    def origin(self, source: DebianSource, fluidsynth: str) -> str:
        what = f"drum kit 128:0 key {self.program}" if self.is_drum else f"bank 0 program {self.program}"
        return f"{Path(source.soundfont).name} {what}, a generated phrase rendered by fluidsynth {fluidsynth}"


def check_source_package(package: str) -> str:
    """``package``, unless it is one of the packages reserved for the independent evaluation."""
    for pattern in FORBIDDEN_PACKAGES:
        if fnmatch.fnmatchcase(package, pattern):
            raise AptUssError(f"package {package!r} is reserved for the independent evaluation of this project "
                              f"(matches {pattern!r}): its audio must not be used")
    return package


def all_classes() -> list[SoundClass]:
    """Every candidate class in a fixed order: the 128 GM instruments, then the GM drum pieces."""
    out = [SoundClass(name, 0, p, p) for p, name in enumerate(GM_PROGRAMS)]
    out += [SoundClass(name, 128, key, 128 + i) for i, (key, name) in enumerate(GM_DRUMS.items())]
    return out


def plan_classes(soundfont: SoundFontTables, unseen: tuple[str, ...] = UNSEEN,
                 max_seen: int = MAX_SEEN_CLASSES) -> tuple[list[SoundClass], list[SoundClass]]:
    """(unseen, seen) classes; no recording is played by two of them.

    The unseen classes come first; a candidate seen class is skipped if any recording it plays
    (over its key range) is played by an already chosen class, so seen and unseen classes share
    no recording, and no two seen classes do either. A recording is a sample's audio data: samples
    whose data spans overlap count as one.
    """
    by_preset = {(p.bank, p.program): p for p in soundfont.presets}
    group = soundfont.shared_audio_groups()
    classes = {c.name: c for c in all_classes()}
    unknown = [n for n in unseen if n not in classes]
    if unknown:
        raise AptUssError(f"unseen class(es) {', '.join(unknown)} are not GM instruments or drum pieces")

    def samples(c: SoundClass) -> set[int]:
        preset = by_preset.get((c.bank, 0 if c.is_drum else c.program))
        return {group[i] if i < len(group) else i for i in preset.samples(c.keys)} if preset else set()

    taken: set[int] = set()
    chosen_unseen = []
    for name in unseen:
        s = samples(classes[name])
        if not s:
            raise AptUssError(f"unseen class {name!r} plays no sample in this SoundFont")
        if s & taken:
            raise AptUssError(f"unseen class {name!r} shares recordings with another unseen class")
        taken |= s
        chosen_unseen.append(classes[name])
    seen = []
    for c in all_classes():
        if c.name in unseen or len(seen) == max_seen:
            continue
        s = samples(c)
        if s and not s & taken:
            taken |= s
            seen.append(c)
    return chosen_unseen, seen


def phrase(c: SoundClass, rng: np.random.Generator, start_s: float) -> list[Note]:
    """One clip's notes, from ``start_s``: a melodic line (instruments) or a rhythm (drum pieces), all released
    by 4.7 s into the clip; onset, tempo, pitch contour, dynamics and rests vary per clip."""
    notes, t = [], float(rng.uniform(0.0, 0.8))
    if c.is_drum:
        interval = float(rng.uniform(0.18, 0.7))
        keep = float(rng.uniform(0.6, 1.0))
        while t < 4.6:
            if rng.random() < keep:
                notes.append(Note(start_s + t, start_s + t + 0.1, c.program, int(rng.integers(40, 128)),
                                  DRUM_CHANNEL))
            t += interval * float(rng.uniform(0.9, 1.1))
        return notes
    lo, hi = c.keys.start, c.keys.stop - 1
    length = float(rng.uniform(0.15, 0.9))
    key = int(rng.integers(lo, hi + 1))
    chords = (c.program // 8) in _POLYPHONIC_FAMILIES
    while t < 4.4:
        duration = min(length * float(rng.uniform(0.6, 1.6)), 4.7 - t)
        velocity = int(rng.integers(50, 121))
        notes.append(Note(start_s + t, start_s + t + duration, key, velocity))
        if chords and rng.random() < 0.25:
            upper = key + int(rng.choice([3, 4, 7]))
            if upper <= hi:  # inside the class's range: the keys whose samples were checked against the others
                notes.append(Note(start_s + t, start_s + t + duration, upper, velocity))
        t += duration + (float(rng.uniform(0.4, 1.0)) if rng.random() < 0.15 else float(rng.uniform(0.0, 0.15)))
        key = int(np.clip(key + int(rng.integers(-5, 6)), lo, hi))
    return notes


def render_clips(soundfont: Path, c: SoundClass, n_clips: int, seed: int, workdir: Path) -> np.ndarray:
    """(n_clips, 5 s) float32 clips of class ``c``: all its phrases in one MIDI file, rendered once, cut per clip."""
    slot = CLIP_SECONDS
    notes = []
    for k in range(n_clips):
        notes += phrase(c, stream("corpus_clip", seed, c.index, k), k * slot)
    programs = {} if c.is_drum else {0: c.program}
    audio = render_midi(soundfont, notes, programs, slot * n_clips, workdir, c.name,
                        silences_s=[k * slot - 0.01 for k in range(1, n_clips + 1)]).mean(axis=1)
    n = int(slot * SAMPLE_RATE)
    clips = audio.reshape(n_clips, n).astype(np.float64)
    peaks = np.abs(clips).max(axis=1, keepdims=True)
    if (peaks < 1e-4).any():
        raise AptUssError(f"class {c.name}: {int((peaks < 1e-4).sum())} rendered clip(s) are silent")
    return (clips * (PEAK / peaks)).astype(np.float32)


def deterministic_tar_gz(folder: Path, archive: Path) -> str:
    """``folder`` as a .tar.gz whose bytes depend only on the files' names and contents; returns its sha256."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        paths = sorted(folder.rglob("*"), key=lambda p: p.relative_to(folder).as_posix())
        for path in paths:
            info = tarfile.TarInfo(f"{folder.name}/{path.relative_to(folder).as_posix()}")
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.mode, info.size = 0o644, path.stat().st_size
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_name(archive.name + ".partial")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
        gz.write(buffer.getvalue())
    tmp.replace(archive)
    return sha256_file(archive)


def fetch_deb(source: DebianSource, deb_dir: Path | None = None) -> Path:
    """The source's .deb: from ``deb_dir`` (pre-downloaded, air-gapped) or downloaded with ``apt-get download``
    into the cache; its sha256 must match the pinned one."""
    check_source_package(source.package)
    name = f"{source.package}_{source.version.split(':')[-1]}_all.deb"
    folder = Path(deb_dir) if deb_dir else cache_dir() / "debs"
    path = folder / name
    if not path.is_file():
        if deb_dir:
            raise AptUssError(f"{path} not found: put {name} (Debian package {source.package} {source.version}) there")
        if shutil.which("apt-get") is None:
            raise AptUssError(f"apt-get is not available to download {source.package} {source.version}: "
                              f"download {name} yourself and pass its folder (--deb-dir)")
        folder.mkdir(parents=True, exist_ok=True)
        log.info("downloading %s %s from the Debian archive", source.package, source.version)
        done = subprocess.run(["apt-get", "download", f"{source.package}={source.version}"], cwd=folder,
                              capture_output=True, text=True, check=False)
        if done.returncode != 0 or not path.is_file():
            raise AptUssError(f"apt-get download {source.package}={source.version} failed: "
                              f"{done.stderr.strip()[-400:]}")
    digest = sha256_file(path)
    if digest != source.sha256:
        raise AptUssError(f"{path} has sha256 {digest}, not the pinned {source.sha256}: "
                          f"delete it and build again, or check the package's origin")
    return path


def extract_deb(deb: Path, dest: Path) -> Path:
    if shutil.which("dpkg-deb") is None:
        raise AptUssError("dpkg-deb is not installed: it unpacks the Debian package the corpus is built from")
    done = subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AptUssError(f"dpkg-deb -x {deb.name} failed: {done.stderr.strip()[-400:]}")
    return dest


def _write_part(folder: Path, rows: list[dict], clips: list[np.ndarray], meta_name: str,
                copyright_text: str) -> None:
    (folder / "audio").mkdir(parents=True)
    (folder / "meta").mkdir()
    for row, clip in zip(rows, clips):
        sf.write(folder / "audio" / row["filename"], clip, SAMPLE_RATE, subtype="PCM_16")
    pd.DataFrame(rows).to_csv(folder / "meta" / meta_name, index=False)
    (folder / "COPYRIGHT.fluid-soundfont-gm").write_text(copyright_text)


def build_corpus(out_dir: str | Path | None = None, deb_dir: str | Path | None = None, seed: int = 0,
                 clips_per_fold: int = CLIPS_PER_FOLD, seen_clips: int = SEEN_CLIPS,
                 unseen: tuple[str, ...] = UNSEEN, max_seen: int = MAX_SEEN_CLASSES,
                 source: DebianSource = SOUNDFONT_SOURCE, force: bool = False,
                 musdb_tracks: dict[str, int] | None = None, musdb_seconds: float | None = None) -> dict:
    """Build ``debian_sounds.tar.gz`` (unseen classes, ESC-50 layout), ``debian_sounds_seen.tar.gz`` (seen
    classes) and ``musdb18_rendered.tar.gz`` (MUSDB18-HQ layout, ``musdb_rendered.py``) in ``out_dir`` (default:
    ``<cache>/corpus``); returns the build record (also ``build.json``).

    An existing build of the same source, seed and sizes whose archives still have their recorded sha256 is
    kept (``force``: build again)."""
    out = Path(out_dir) if out_dir else corpus_dir()
    started = time.monotonic()
    version = fluidsynth_version()
    musdb_tracks = dict(musdb_tracks or musdb_rendered.TRACKS)
    musdb_seconds = float(musdb_seconds or musdb_rendered.TRACK_SECONDS)
    wanted = {"format": CORPUS_FORMAT, "source_sha256": source.sha256, "seed": seed, "fluidsynth": version,
              "sizes": {"clips_per_fold": clips_per_fold, "seen_clips": seen_clips, "unseen": list(unseen),
                        "max_seen": max_seen, "musdb_tracks": musdb_tracks, "musdb_seconds": musdb_seconds}}
    previous = _up_to_date(out, wanted)
    if previous and not force:
        log.info("corpus in %s is up to date (sha256 %s); --force builds it again", out,
                 previous["parts"][NAME]["sha256"])
        return previous
    deb = fetch_deb(source, Path(deb_dir) if deb_dir else None)
    with tempfile.TemporaryDirectory(prefix="corpus-") as tmp:
        tmp = Path(tmp)
        root = extract_deb(deb, tmp / "deb")
        soundfont = root / source.soundfont
        if not soundfont.is_file():
            raise AptUssError(f"{deb.name} has no {source.soundfont}")
        copyright_file = root / "usr/share/doc" / source.package / "copyright"
        copyright_text = copyright_file.read_text() if copyright_file.is_file() else source.license
        unseen_classes, seen_classes = plan_classes(read_soundfont(soundfont), unseen, max_seen)
        provenance = {"source_package": f"{source.package} {source.version}", "license": source.license}
        parts = {NAME: (unseen_classes, FOLDS * clips_per_fold), SEEN_NAME: (seen_classes, seen_clips)}
        records = {}
        for part, (classes, n_clips) in parts.items():
            rows, clips = [], []
            for target, c in enumerate(classes):
                audio = render_clips(soundfont, c, n_clips, seed, tmp)
                for k, clip in enumerate(audio):
                    fold = k // clips_per_fold + 1 if part == NAME else k // n_clips + 1
                    rows.append({"filename": f"{fold}-{c.name}-{k:02d}.wav", "fold": fold, "target": target,
                                 "category": c.name, **provenance, "origin": c.origin(source, version)})
                    clips.append(clip)
                done = target + 1
                log.info("corpus %s: %d/%d classes (%s), %.1f classes/s", part, done, len(classes), c.name,
                         done / (time.monotonic() - started))
            folder = tmp / part
            _write_part(folder, rows, clips, "esc50.csv", copyright_text)
            records[part] = {"archive": f"{part}.tar.gz", "classes": [c.name for c in classes],
                             "clips": len(rows), "sha256": deterministic_tar_gz(folder, out / f"{part}.tar.gz")}
        folder = tmp / musdb_rendered.NAME
        info = musdb_rendered.build_musdb_rendered(soundfont, folder, tmp, seed, musdb_tracks, musdb_seconds)
        (folder / "COPYRIGHT.fluid-soundfont-gm").write_text(copyright_text)
        (folder / "rendered.json").write_text(json.dumps({**info, **provenance}, indent=2) + "\n")
        records[musdb_rendered.NAME] = {"archive": f"{musdb_rendered.NAME}.tar.gz", "tracks": musdb_tracks,
                                        "sha256": deterministic_tar_gz(folder, out / f"{musdb_rendered.NAME}.tar.gz")}
    record = {"name": NAME, "source_package": source.package, "source_version": source.version,
              "license": source.license, **wanted,
              "sample_rate": SAMPLE_RATE, "clip_seconds": CLIP_SECONDS, "parts": records,
              "seconds": round(time.monotonic() - started, 1)}
    (out / "build.json").write_text(json.dumps(record, indent=2) + "\n")
    for part, r in records.items():
        log.info("built %s: sha256 %s", out / r["archive"], r["sha256"])
    return record


def _up_to_date(out: Path, wanted: dict) -> dict | None:
    try:
        record = json.loads((out / "build.json").read_text())
    except (OSError, ValueError):
        return None
    if any(record.get(k) != v for k, v in wanted.items()):
        return None
    for r in record.get("parts", {}).values():
        path = out / r["archive"]
        if not path.is_file() or sha256_file(path) != r["sha256"]:
            return None
    return record


def corpus_dir() -> Path:
    return cache_dir() / "corpus"


def built_archive(part: str = NAME) -> Path:
    """The locally built archive of ``part``; a clear error when the corpus was not built yet."""
    path = corpus_dir() / f"{part}.tar.gz"
    if not path.is_file():
        raise AptUssError(f"{path} does not exist: build the real-audio corpus first with `make corpus` "
                          f"(downloads {SOUNDFONT_SOURCE.package} from the Debian archive; a few minutes)")
    return path


def _seen_archive(corpus_uri: str = "") -> Path:
    if not corpus_uri:
        return built_archive(SEEN_NAME)
    return Path(fetch_uri(corpus_uri, sha256="", what="corpus_uri"))


def seen_archive_sha256(corpus_uri: str = "") -> str:
    return sha256_file(_seen_archive(corpus_uri))


def extracted(part: str = NAME, archive: Path | None = None) -> Path:
    """The folder of ``part`` extracted (once, by the archive's sha256) from its archive (default: the built one)."""
    archive = archive or built_archive(part)
    digest = sha256_file(archive)
    folder = corpus_dir() / "extracted" / digest[:16]
    if not (folder / part / "meta" / "esc50.csv").is_file():
        corpus_dir().mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="extract-", dir=corpus_dir()) as tmp:
            extract_archive(archive, tmp)
            if not (Path(tmp) / part / "meta" / "esc50.csv").is_file():
                raise AptUssError(f"{archive} holds no {part}/meta/esc50.csv: not a {part} archive")
            folder.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / part).rename(folder / part)
    return folder / part


def load_seen_clips(n_classes: int, clips_per_class: int, corpus_uri: str = "") -> tuple[np.ndarray, np.ndarray]:
    """(clips (N, samples) float32, class ids (N,)) of the first ``n_classes`` seen classes, ``clips_per_class``
    each, in class order (the layout the backbone's held-out split expects)."""
    archive = _seen_archive(corpus_uri)
    root = extracted(SEEN_NAME, archive)
    meta = pd.read_csv(root / "meta" / "esc50.csv").sort_values(["target", "filename"], kind="stable")
    available = meta["target"].nunique()
    if n_classes > available:
        raise AptUssError(f"n_classes={n_classes}: the seen corpus {archive.name} has {available} classes")
    clips, labels, started = [], [], time.monotonic()
    for target in range(n_classes):
        files = meta.loc[meta["target"] == target, "filename"].tolist()
        if len(files) < clips_per_class:
            raise AptUssError(f"clips_per_class={clips_per_class}: seen class {target} of {archive.name} has "
                              f"{len(files)} clips")
        for name in files[:clips_per_class]:
            audio, rate = sf.read(root / "audio" / name, dtype="float32")
            if rate != SAMPLE_RATE:
                raise AptUssError(f"{name} in {archive.name} is at {rate} Hz, not {SAMPLE_RATE}")
            clips.append(audio)
            labels.append(target)
        if (target + 1) % 32 == 0 or target + 1 == n_classes:
            log.info("seen corpus: %d/%d classes read (%.0f clips/s)", target + 1, n_classes,
                     len(clips) / (time.monotonic() - started))
    return np.stack(clips), np.asarray(labels, np.int64)
