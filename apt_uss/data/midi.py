"""Writing Standard MIDI Files (format 0) from timed note events, for rendering with a sampled-instrument synth."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from apt_uss.errors import AptUssError

TICKS_PER_QUARTER = 480
MICROSECONDS_PER_QUARTER = 500_000  # 120 bpm: 960 ticks per second
TICKS_PER_SECOND = TICKS_PER_QUARTER * 1_000_000 // MICROSECONDS_PER_QUARTER
DRUM_CHANNEL = 9  # General MIDI percussion (channel 10 counted from 1)
ALL_SOUND_OFF, RESET_CONTROLLERS = 120, 121


@dataclass(frozen=True)
class Note:
    start_s: float
    end_s: float
    key: int
    velocity: int
    channel: int = 0


def _varlen(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def midi_bytes(notes: list[Note], programs: dict[int, int] | None = None,
               silences_s: list[float] = ()) -> bytes:
    """A format-0 MIDI file: ``programs`` (channel -> GM program) set at time 0, the ``notes``, and at each
    time in ``silences_s`` an All Sound Off on every used channel (cuts release tails at a clip's end)."""
    programs = programs or {}
    events = []  # (tick, order, bytes): note-offs sort before note-ons at the same tick
    for channel, program in sorted(programs.items()):
        events.append((0, 0, bytes([0xC0 | channel, program])))
    channels = sorted({n.channel for n in notes} | set(programs))
    for n in notes:
        if not (0 <= n.key <= 127 and 1 <= n.velocity <= 127 and 0 <= n.channel <= 15):
            raise AptUssError(f"MIDI note {n} is out of range (key 0-127, velocity 1-127, channel 0-15)")
        if not 0 <= n.start_s < n.end_s:
            raise AptUssError(f"MIDI note {n} ends before it starts")
        on, off = round(n.start_s * TICKS_PER_SECOND), round(n.end_s * TICKS_PER_SECOND)
        events.append((on, 2, bytes([0x90 | n.channel, n.key, n.velocity])))
        events.append((max(off, on + 1), 1, bytes([0x80 | n.channel, n.key, 0])))
    for t in silences_s:
        for channel in channels:
            tick = round(t * TICKS_PER_SECOND)
            events.append((tick, 0, bytes([0xB0 | channel, ALL_SOUND_OFF, 0])))
            events.append((tick, 0, bytes([0xB0 | channel, RESET_CONTROLLERS, 0])))
            if channel in programs:  # a controller reset keeps the program, but say it again for safety
                events.append((tick, 0, bytes([0xC0 | channel, programs[channel]])))
    events.sort(key=lambda e: (e[0], e[1]))
    track, now = bytearray(), 0
    track += b"\x00\xff\x51\x03" + MICROSECONDS_PER_QUARTER.to_bytes(3, "big")
    for tick, _, data in events:
        track += _varlen(tick - now) + data
        now = tick
    track += b"\x00\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_QUARTER)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


def write_midi(path: str | Path, notes: list[Note], programs: dict[int, int] | None = None,
               silences_s: list[float] = ()) -> Path:
    path = Path(path)
    path.write_bytes(midi_bytes(notes, programs, silences_s))
    return path
