"""The real-audio corpus (apt_uss/data/debian_sounds.py), built from a test Debian package the tests make."""

import json
import shutil
import struct
import tarfile

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from apt_uss.data import debian_sounds as ds
from apt_uss.data.midi import DRUM_CHANNEL, Note, midi_bytes
from apt_uss.data.soundfont import read_presets, read_soundfont
from apt_uss.data.streams import stream
from apt_uss.errors import AptUssError
from apt_uss.io.download import sha256_file
from tests.soundfont_fixture import ALIASES, N_SAMPLES, PRESETS, SOUNDFONT_PATH, build_deb, soundfont_bytes

needs_tools = pytest.mark.skipif(shutil.which("fluidsynth") is None or shutil.which("dpkg-deb") is None,
                                 reason="fluidsynth and dpkg-deb build the corpus (apt-get install fluidsynth; "
                                        ".ci/run installs it)")


@pytest.mark.parametrize("package", ["0ad-data", "megaglest-data", "tuxpaint-stamps-animals", "widelands-data",
                                     "hedgewars-data", "wesnoth-1.16-data", "openarena-data", "scorched3d-data",
                                     "warmux-data"])
def test_packages_reserved_for_the_independent_evaluation_are_refused(package):
    with pytest.raises(AptUssError, match="reserved for the independent evaluation"):
        ds.check_source_package(package)


def test_the_shipped_source_is_not_a_reserved_package():
    assert ds.check_source_package(ds.SOUNDFONT_SOURCE.package) == "fluid-soundfont-gm"


def test_soundfont_presets_map_each_key_to_the_samples_it_plays(tmp_path):
    path = tmp_path / "t.sf2"
    path.write_bytes(soundfont_bytes(PRESETS, N_SAMPLES, ALIASES))
    presets = {(p.bank, p.program): p for p in read_presets(path)}
    assert presets[(0, 0)].samples_by_key[60] == {1} and presets[(0, 0)].samples_by_key[61] == {2}
    assert presets[(0, 0)].samples(range(50, 70)) == {1, 2}
    assert presets[(128, 0)].samples([39]) == {5} and presets[(128, 0)].samples([40]) == set()


def test_a_file_that_is_not_a_soundfont_is_refused(tmp_path):
    path = tmp_path / "x.sf2"
    path.write_bytes(b"RIFF\0\0\0\0WAVE")
    with pytest.raises(AptUssError, match="not a SoundFont 2 file"):
        read_presets(path)


def test_seen_classes_share_no_recording_with_unseen_ones_or_each_other(tmp_path):
    path = tmp_path / "t.sf2"
    path.write_bytes(soundfont_bytes(PRESETS, N_SAMPLES, ALIASES))
    tables = read_soundfont(path)
    unseen, seen = ds.plan_classes(tables, unseen=("violin", "hand_clap"), max_seen=10)
    assert [c.name for c in unseen] == ["violin", "hand_clap"]
    # bright piano plays the violin's sample; tuba the trumpet's audio under another sample id
    assert [c.name for c in seen] == ["acoustic_grand_piano", "trumpet", "acoustic_snare"]
    unseen, seen = ds.plan_classes(tables, unseen=("tuba",), max_seen=10)
    assert [c.name for c in seen] == ["acoustic_grand_piano", "bright_acoustic_piano", "acoustic_snare", "hand_clap"]
    with pytest.raises(AptUssError, match="shares recordings with another unseen class"):
        ds.plan_classes(tables, unseen=("violin", "bright_acoustic_piano"))
    with pytest.raises(AptUssError, match="not GM instruments or drum pieces"):
        ds.plan_classes(tables, unseen=("kazoo",))


def test_a_key_range_that_is_not_a_zone_first_generator_counts_as_every_key(tmp_path):
    from apt_uss.data.soundfont import _key_range

    assert _key_range({43: bytes([10, 20]), 53: b"\0\0"}) == (10, 20)
    assert _key_range({54: b"\1\0", 43: bytes([10, 20]), 53: b"\0\0"}) == (0, 127)


def test_a_truncated_soundfont_is_an_error_naming_the_file(tmp_path):
    data = soundfont_bytes(PRESETS, N_SAMPLES, ALIASES)
    path = tmp_path / "cut.sf2"
    path.write_bytes(data[:-200])
    with pytest.raises(AptUssError, match="cut.sf2"):
        read_soundfont(path)


def test_every_shipped_unseen_class_is_a_gm_class_and_phrases_stay_inside_their_clip():
    names = {c.name: c for c in ds.all_classes()}
    assert len(ds.GM_PROGRAMS) == 128 and set(ds.UNSEEN) <= set(names)
    for c in (names["violin"], names["cowbell"], names["contrabass"]):
        for k in range(20):
            notes = ds.phrase(c, stream("corpus_clip", 0, c.index, k), 10.0)
            assert notes and all(10.0 <= n.start_s < n.end_s <= 10.0 + 4.75 for n in notes)
            assert all(n.key in c.keys for n in notes)
            assert all(n.channel == (DRUM_CHANNEL if c.is_drum else 0) for n in notes)


def test_midi_file_holds_the_notes_in_time_order():
    data = midi_bytes([Note(1.0, 1.5, 64, 90), Note(0.0, 0.5, 60, 100)], {0: 40}, silences_s=[2.0])
    assert data[:4] == b"MThd" and data[14:18] == b"MTrk"
    assert struct.unpack(">I", data[18:22])[0] == len(data) - 22
    track = data[22:]
    assert track.index(bytes([0xC0, 40])) < track.index(bytes([0x90, 60, 100])) < track.index(bytes([0x90, 64, 90]))
    with pytest.raises(AptUssError, match="out of range"):
        midi_bytes([Note(0.0, 1.0, 200, 90)])


def _decode_track(data: bytes) -> list[tuple[int, bytes]]:
    """(absolute tick, event bytes) of a format-0 file's channel events, read as a MIDI parser would."""
    track, pos, tick, events = data[22:], 0, 0, []
    while pos < len(track):
        delta = 0
        while True:
            byte = track[pos]
            pos += 1
            delta = (delta << 7) | (byte & 0x7F)
            if byte < 0x80:
                break
        tick += delta
        status = track[pos]
        if status == 0xFF:
            length = track[pos + 2]
            pos += 3 + length
            continue
        size = 2 if status & 0xF0 in (0xC0, 0xD0) else 3
        events.append((tick, track[pos:pos + size]))
        pos += size
    return events


def test_midi_delta_times_and_same_tick_order_decode_as_written():
    # 0.5 s is tick 480; a repeated key's note-off must come before its next note-on at the same tick
    events = _decode_track(midi_bytes([Note(0.0, 0.5, 60, 100), Note(0.5, 1.0, 60, 90), Note(200.0, 200.5, 62, 80)],
                                      {0: 40}, silences_s=[1.2]))
    assert events[0] == (0, bytes([0xC0, 40]))
    assert events[1:4] == [(0, bytes([0x90, 60, 100])), (480, bytes([0x80, 60, 0])), (480, bytes([0x90, 60, 90]))]
    assert (960, bytes([0x80, 60, 0])) in events
    assert (1152, bytes([0xB0, 120, 0])) in events  # All Sound Off at 1.2 s
    assert events[-1] == (192480, bytes([0x80, 62, 0]))  # a delta above 127 needs several bytes


def _source(deb):
    return ds.DebianSource(package="apt-uss-test-soundfont", version="1.0", sha256=sha256_file(deb),
                           license="CC0 (test tones)", soundfont=SOUNDFONT_PATH)


def test_a_deb_whose_sha256_differs_from_the_pin_is_refused(tmp_path):
    deb = build_deb(tmp_path) if shutil.which("dpkg-deb") else None
    if deb is None:
        pytest.skip("dpkg-deb builds the test package")
    wrong = ds.DebianSource(**{**_source(deb).__dict__, "sha256": "0" * 64})
    with pytest.raises(AptUssError, match="not the pinned"):
        ds.fetch_deb(wrong, tmp_path)
    with pytest.raises(AptUssError, match="not found"):
        ds.fetch_deb(ds.DebianSource(**{**_source(deb).__dict__, "version": "2.0"}), tmp_path)


@needs_tools
def test_corpus_build_is_byte_identical_and_in_esc50_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("APT_USS_CACHE", str(tmp_path / "cache"))
    debs = tmp_path / "debs"
    debs.mkdir()
    source = _source(build_deb(debs))
    sizes = dict(clips_per_fold=1, seen_clips=3, unseen=("violin", "hand_clap"), max_seen=2,
                 musdb_tracks={"train": 1, "test": 1}, musdb_seconds=4.0)
    first = ds.build_corpus(tmp_path / "a", debs, source=source, **sizes)
    second = ds.build_corpus(tmp_path / "b", debs, source=source, **sizes)
    for part in (ds.NAME, ds.SEEN_NAME, "musdb18_rendered"):
        assert first["parts"][part]["sha256"] == second["parts"][part]["sha256"]
        assert sha256_file(tmp_path / "a" / f"{part}.tar.gz") == first["parts"][part]["sha256"]
    assert first["parts"][ds.SEEN_NAME]["classes"] == ["acoustic_grand_piano", "trumpet"]
    with tarfile.open(tmp_path / "a" / f"{ds.NAME}.tar.gz") as tar:
        tar.extractall(tmp_path / "x", filter="data")
    root = tmp_path / "x" / ds.NAME
    meta = pd.read_csv(root / "meta" / "esc50.csv")
    assert sorted(meta["fold"].unique()) == [1, 2, 3, 4, 5] and len(meta) == 10
    assert set(meta["category"]) == {"violin", "hand_clap"}
    assert meta["source_package"].eq("apt-uss-test-soundfont 1.0").all() and meta["license"].str.contains("CC0").all()
    assert "program 40" in meta.loc[meta["category"] == "violin", "origin"].iloc[0]
    audio, rate = sf.read(root / "audio" / meta["filename"].iloc[0])
    assert rate == 32000 and len(audio) == 5 * 32000 and 0.85 < np.abs(audio).max() <= 0.9
    assert (root / "COPYRIGHT.fluid-soundfont-gm").read_text().startswith("test tones")
    # A build already there is kept; a damaged archive is built again.
    record = json.loads((tmp_path / "a" / "build.json").read_text())
    assert ds.build_corpus(tmp_path / "a", debs, source=source, **sizes) == record
    (tmp_path / "a" / f"{ds.NAME}.tar.gz").write_bytes(b"damaged")
    assert ds.build_corpus(tmp_path / "a", debs, source=source, **sizes)["parts"] == record["parts"]


@needs_tools
def test_the_pipeline_and_the_backbone_read_the_built_corpus_by_name(tmp_path, monkeypatch):
    from apt_uss.data.dataset import fetch_dataset
    from apt_uss.steps.backbone import _corpus

    monkeypatch.setenv("APT_USS_CACHE", str(tmp_path / "cache"))
    with pytest.raises(AptUssError, match="make corpus"):
        fetch_dataset("debian_sounds", tmp_path / "none")
    debs = tmp_path / "debs"
    debs.mkdir()
    ds.build_corpus(None, debs, source=_source(build_deb(debs)), clips_per_fold=1, seen_clips=3,
                    unseen=("violin", "hand_clap"), max_seen=2, musdb_tracks={"train": 1, "test": 1},
                    musdb_seconds=4.0)
    manifest = fetch_dataset("debian_sounds", tmp_path / "ds")
    assert manifest["n_classes"] == 2 and manifest["n_clips"] == 10
    assert manifest["fingerprint"] == sha256_file(ds.corpus_dir() / f"{ds.NAME}.tar.gz")
    train_x, train_y, val_x, val_y = _corpus("debian_sounds", 2, 3, 1, seed=0)
    assert train_x.shape == (4, 160000) and list(train_y) == [0, 0, 1, 1] and list(val_y) == [0, 1]
    with pytest.raises(AptUssError, match="has 2 classes"):
        _corpus("debian_sounds", 3, 3, 1, seed=0)


@needs_tools
def test_rendered_musdb_set_is_in_musdb18_hq_layout_and_its_mixture_is_the_sum_of_its_stems(tmp_path, monkeypatch):
    from apt_uss.data.dataset import fetch_dataset

    monkeypatch.setenv("APT_USS_CACHE", str(tmp_path / "cache"))
    debs = tmp_path / "debs"
    debs.mkdir()
    ds.build_corpus(None, debs, source=_source(build_deb(debs)), clips_per_fold=1, seen_clips=2,
                    unseen=("violin", "hand_clap"), max_seen=1, musdb_tracks={"train": 2, "test": 1},
                    musdb_seconds=6.0)
    archive = ds.corpus_dir() / "musdb18_rendered.tar.gz"
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    root = tmp_path / "x" / "musdb18_rendered"
    tracks = sorted(p.relative_to(root).as_posix() for p in root.glob("*/*"))
    assert tracks == ["test/Rendered - Test 00", "train/Rendered - Train 00", "train/Rendered - Train 01"]
    track = root / "train" / "Rendered - Train 00"
    stems = {s: sf.read(track / f"{s}.wav", dtype="int16")[0].astype(int) for s in ("drums", "bass", "other", "vocals")}
    mixture, rate = sf.read(track / "mixture.wav", dtype="int16")
    assert rate == 44100 and mixture.shape == (6 * 44100, 2)
    assert np.array_equal(mixture.astype(int), sum(stems.values()))
    assert np.abs(stems["other"]).max() > 1000  # the test SoundFont's piano plays the chords
    manifest = fetch_dataset("musdb18", tmp_path / "ingested", dataset_uri=str(archive))
    assert manifest["n_clips"] == 3 * 4 and manifest["fingerprint"] == sha256_file(archive)
