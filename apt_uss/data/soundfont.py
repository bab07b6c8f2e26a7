"""Which recorded samples a SoundFont 2 preset plays: enough of the SF2 format to keep two class sets apart.

A SoundFont maps a preset (bank, program) to instruments and an instrument's zones (key ranges)
to samples. The real-audio corpus renders its classes from presets, and its seen (backbone
training) and unseen (evaluation) classes must not share a recording: this reads every preset's
sample ids per key so the corpus builder can check that (SoundFont 2.04 specification, the
``pdta`` chunk's ``phdr``/``pbag``/``pgen``/``inst``/``ibag``/``igen`` records).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from apt_uss.errors import AptUssError

GEN_KEY_RANGE, GEN_INSTRUMENT, GEN_SAMPLE_ID = 43, 41, 53
_RECORD = {"phdr": 38, "pbag": 4, "pgen": 4, "inst": 22, "ibag": 4, "igen": 4}
# shdr (46-byte sample headers) is read for the sample data spans


@dataclass
class SoundFontTables:
    presets: list
    sample_spans: list[tuple[int, int]]  # sample id -> (start, end) in the sample data, in samples

    def shared_audio_groups(self) -> list[int]:
        """Sample id -> the id of its group: samples whose data spans overlap are one recording."""
        order = sorted(range(len(self.sample_spans)), key=lambda i: self.sample_spans[i])
        group, current, end = [0] * len(self.sample_spans), -1, -1
        for i in order:
            start, stop = self.sample_spans[i]
            if start >= end:  # no overlap with the group so far: a new recording
                current = i
            group[i] = current
            end = max(end, stop) if start < end else stop
        return group


@dataclass
class Preset:
    name: str
    bank: int
    program: int
    samples_by_key: dict[int, set[int]] = field(default_factory=dict)  # MIDI key -> sample ids it may play

    def samples(self, keys=None) -> set[int]:
        """Sample ids played by ``keys`` (every key when None)."""
        chosen = self.samples_by_key if keys is None else {k: self.samples_by_key.get(k, set()) for k in keys}
        return set().union(*chosen.values()) if chosen else set()


def _chunks(data: bytes, start: int, end: int, path: Path) -> dict[str, tuple[int, int]]:
    out, pos = {}, start
    while pos + 8 <= end:
        tag, size = data[pos:pos + 4].decode("latin-1"), struct.unpack_from("<I", data, pos + 4)[0]
        if tag == "LIST":
            out[data[pos + 8:pos + 12].decode("latin-1")] = (pos + 12, pos + 8 + size)
        else:
            out[tag] = (pos + 8, pos + 8 + size)
        pos += 8 + size + (size & 1)
    return out


def _records(data: bytes, span: tuple[int, int], kind: str, path: Path) -> list[bytes]:
    start, end = span
    size = _RECORD[kind]
    if (end - start) % size:
        raise AptUssError(f"{path}: SF2 {kind} chunk of {end - start} bytes is not a whole number of records")
    return [data[i:i + size] for i in range(start, end, size)]


def _zones(bags: list[bytes], gens: list[bytes], first: int, last: int):
    """Each zone's generators as {operator: raw amount bytes} for bags ``first``..``last - 1``."""
    for b in range(first, last):
        g0, g1 = struct.unpack_from("<H", bags[b])[0], struct.unpack_from("<H", bags[b + 1])[0]
        yield {struct.unpack_from("<H", gens[g])[0]: gens[g][2:4] for g in range(g0, g1)}


def _key_range(zone: dict, default=(0, 127)) -> tuple[int, int]:
    """The zone's key range; the spec allows it only as a zone's first generator, so one elsewhere is not
    trusted (the zone then counts as playing every key: more samples, never fewer)."""
    raw = zone.get(GEN_KEY_RANGE)
    if raw is None or next(iter(zone)) != GEN_KEY_RANGE:
        return default
    return raw[0], raw[1]


def read_presets(path: str | Path) -> list[Preset]:
    """Every preset of the SF2 file at ``path`` with the sample ids each MIDI key plays."""
    return read_soundfont(path).presets


def read_soundfont(path: str | Path) -> SoundFontTables:
    """The presets (with the sample ids each key plays) and every sample's data span of the SF2 file at ``path``."""
    path = Path(path)
    try:
        return _read(path)
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise AptUssError(f"{path}: damaged SoundFont tables ({exc})") from None


def _read(path: Path) -> SoundFontTables:
    data = path.read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"sfbk":
        raise AptUssError(f"{path} is not a SoundFont 2 file (no RIFF sfbk header)")
    top = _chunks(data, 12, len(data), path)
    if "pdta" not in top:
        raise AptUssError(f"{path}: SF2 file without a pdta chunk")
    pdta = _chunks(data, *top["pdta"], path)
    missing = [k for k in (*_RECORD, "shdr") if k not in pdta]
    if missing:
        raise AptUssError(f"{path}: SF2 pdta chunk lacks {', '.join(missing)}")
    rec = {k: _records(data, pdta[k], k, path) for k in _RECORD}
    start, end = pdta["shdr"]
    if (end - start) % 46:
        raise AptUssError(f"{path}: SF2 shdr chunk of {end - start} bytes is not a whole number of records")
    spans = [struct.unpack_from("<II", data, i + 20) for i in range(start, end - 46, 46)]  # the last is "EOS"
    # Instruments: key -> samples (the last instrument record is the terminal "EOI").
    instruments = []
    for i in range(len(rec["inst"]) - 1):
        first = struct.unpack_from("<H", rec["inst"][i], 20)[0]
        last = struct.unpack_from("<H", rec["inst"][i + 1], 20)[0]
        by_key: dict[int, set[int]] = {}
        for zone in _zones(rec["ibag"], rec["igen"], first, last):
            if GEN_SAMPLE_ID not in zone:
                continue  # a global zone
            lo, hi = _key_range(zone)
            sample = struct.unpack("<H", zone[GEN_SAMPLE_ID])[0]
            for key in range(lo, hi + 1):
                by_key.setdefault(key, set()).add(sample)
        instruments.append(by_key)
    presets = []
    for i in range(len(rec["phdr"]) - 1):
        name, program, bank, first = struct.unpack_from("<20sHHH", rec["phdr"][i])
        last = struct.unpack_from("<H", rec["phdr"][i + 1], 24)[0]
        preset = Preset(name.split(b"\0")[0].decode("latin-1").strip(), bank, program)
        for zone in _zones(rec["pbag"], rec["pgen"], first, last):
            if GEN_INSTRUMENT not in zone:
                continue
            lo, hi = _key_range(zone)
            inst = struct.unpack("<H", zone[GEN_INSTRUMENT])[0]
            if inst >= len(instruments):
                raise AptUssError(f"{path}: preset {preset.name!r} names instrument {inst}, beyond the file's "
                                  f"{len(instruments)}")
            for key, samples in instruments[inst].items():
                if lo <= key <= hi:
                    preset.samples_by_key.setdefault(key, set()).update(samples)
        presets.append(preset)
    return SoundFontTables(presets, spans)
