import hashlib
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from apt_uss.data.clips import read_clip
from apt_uss.data.dataset import ESC50_URL, fetch_dataset, load_metadata
from apt_uss.data.folds import split_folds
from apt_uss.errors import AptUssError

FORMATS = [(44100, 2), (48000, 1), (32000, 1), (44100, 1), (22050, 2)]


def _mini_esc50(root, silent=()):
    """Two classes x 5 folds x 1 clip in mixed formats (ESC-50 ships 44.1 kHz; users bring others)."""
    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    rows = []
    for target, (category, freq) in enumerate([("dog", 440.0), ("rain", 20000.0)]):
        for fold in range(1, 6):
            sr, ch = FORMATS[fold - 1] if target == 0 else (44100, 2)
            t = np.arange(int(0.5 * sr)) / sr
            tone = 0.5 * np.sin(2 * np.pi * freq * t)
            name = f"{fold}-{1000 + target}-A-{target}.wav"
            if name in silent:
                tone = 0 * tone
            sf.write(root / "audio" / name, np.stack([tone] * ch, axis=1), sr)
            rows.append({"filename": name, "fold": fold, "target": target, "category": category,
                         "esc10": False, "src_file": 1000 + target, "take": "A"})
    pd.DataFrame(rows).to_csv(root / "meta" / "esc50.csv", index=False)


def _zip_dir(src, archive, top="ESC-50-master"):
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(src.rglob("*")):
            if path.is_file():
                zf.write(path, f"{top}/{path.relative_to(src)}")
    return archive


def test_local_esc50_is_converted_to_32k_mono_with_a_manifest(tmp_path):
    _mini_esc50(tmp_path / "src")
    manifest = fetch_dataset("esc50", tmp_path / "out", dataset_uri=(tmp_path / "src").as_uri())
    assert manifest["sample_rate"] == 32000 and manifest["n_clips"] == 10 and manifest["n_classes"] == 2
    assert manifest["clips_per_class_and_fold"]["dog"] == {str(f): 1 for f in range(1, 6)}
    assert manifest["source_formats"]["44100 Hz x 2 ch"] == 6 and manifest["source_formats"]["48000 Hz x 1 ch"] == 1
    assert "32000 Hz" in manifest["conversion"] and manifest["sha256"] is None
    assert json.loads((tmp_path / "out" / "dataset.json").read_text()) == manifest
    for fold in range(1, 6):  # every format becomes 0.5 s of 32 kHz mono at the same level
        dog = read_clip(tmp_path / "out", f"{fold}-1000-A-0.wav")
        assert len(dog) == 16000
        # A 0.5-amplitude sine's RMS after resampling and 16-bit PCM: the resampler's passband ripple
        # (a few tenths of a dB at most) sets the 2%, not float rounding.
        assert np.sqrt(np.mean(dog[500:-500] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)
    # 20 kHz lies above the new Nyquist (16 kHz): filtered out, not aliased to 12 kHz
    rain = read_clip(tmp_path / "out", "1-1001-A-1.wav")
    assert np.sqrt(np.mean(rain[1000:-1000] ** 2)) < 0.05


def test_archive_by_file_uri_with_checksum_and_identical_manifests(tmp_path, monkeypatch):
    monkeypatch.setenv("APT_USS_CACHE", str(tmp_path / "cache"))
    _mini_esc50(tmp_path / "src")
    archive = _zip_dir(tmp_path / "src", tmp_path / "esc50.zip")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    a = fetch_dataset("esc50", tmp_path / "a", dataset_uri=archive.as_uri(), dataset_sha256=digest)
    b = fetch_dataset("esc50", tmp_path / "b", dataset_uri=archive.as_uri())
    assert a["sha256"] == b["sha256"] == digest and a["n_clips"] == 10
    assert (tmp_path / "a" / "dataset.json").read_bytes() == (tmp_path / "b" / "dataset.json").read_bytes()
    assert not list((tmp_path / "cache").glob("extract-*"))  # extraction scratch is cleaned up


def test_checksum_mismatch_and_traversal_archive_leave_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("APT_USS_CACHE", str(tmp_path / "cache"))
    _mini_esc50(tmp_path / "src")
    archive = _zip_dir(tmp_path / "src", tmp_path / "esc50.zip")
    with pytest.raises(AptUssError, match="checksum mismatch: expected sha256 " + "ab" * 32):
        fetch_dataset("esc50", tmp_path / "out", dataset_uri=str(archive), dataset_sha256="ab" * 32)
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("../../escaped.txt", "x")
    with pytest.raises(AptUssError, match=r"refusing entry '../../escaped.txt'"):
        fetch_dataset("esc50", tmp_path / "out", dataset_uri=str(archive))
    assert not (tmp_path / "out").exists() and not (tmp_path / "escaped.txt").exists()


def test_truncated_and_corrupt_audio_are_named(tmp_path):
    _mini_esc50(tmp_path / "src")
    clip = tmp_path / "src" / "audio" / "2-1000-A-0.wav"
    data = clip.read_bytes()
    clip.write_bytes(data[: len(data) // 2])
    with pytest.raises(AptUssError, match=r"2-1000-A-0.wav is truncated"):
        fetch_dataset("esc50", tmp_path / "out", dataset_uri=str(tmp_path / "src"))
    clip.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(AptUssError, match=r"2-1000-A-0.wav is not readable audio"):
        fetch_dataset("esc50", tmp_path / "out", dataset_uri=str(tmp_path / "src"))
    assert not (tmp_path / "out").exists()


def test_missing_audio_and_bad_metadata_are_named(tmp_path):
    _mini_esc50(tmp_path / "src")
    (tmp_path / "src" / "audio" / "3-1001-A-1.wav").unlink()
    with pytest.raises(AptUssError, match="lists 3-1001-A-1.wav"):
        fetch_dataset("esc50", tmp_path / "out", dataset_uri=str(tmp_path / "src"))
    meta = pd.read_csv(tmp_path / "src" / "meta" / "esc50.csv")
    meta.drop(columns="category").to_csv(tmp_path / "src" / "meta" / "esc50.csv", index=False)
    with pytest.raises(AptUssError, match=r"esc50.csv lacks column\(s\) category"):
        fetch_dataset("esc50", tmp_path / "out", dataset_uri=str(tmp_path / "src"))
    meta.assign(fold="one").to_csv(tmp_path / "src" / "meta" / "esc50.csv", index=False)
    with pytest.raises(AptUssError, match=r"column 'fold' must hold integers"):
        load_metadata(tmp_path / "src")
    assert not (tmp_path / "out").exists()


def test_silent_clips_are_counted_and_kept_out_of_the_split(tmp_path):
    _mini_esc50(tmp_path / "src", silent={"1-1000-A-0.wav", "5-1001-A-1.wav"})
    manifest = fetch_dataset("esc50", tmp_path / "out", dataset_uri=str(tmp_path / "src"))
    assert manifest["n_silent"] == 2 and set(manifest["silent_clips"]) == {"1-1000-A-0.wav", "5-1001-A-1.wav"}
    splits = split_folds(load_metadata(tmp_path / "out"), None, 0, [1, 2, 3], [4, 5])
    assert not set(splits["filename"]) & {"1-1000-A-0.wav", "5-1001-A-1.wav"}
    assert len(splits) == 8


def test_an_empty_clip_at_any_rate_is_a_silent_clip_not_a_crash(tmp_path):
    _mini_esc50(tmp_path / "src")
    sf.write(tmp_path / "src" / "audio" / "2-1000-A-0.wav", np.zeros((0, 1)), 48000)  # no samples, not 32 kHz
    manifest = fetch_dataset("esc50", tmp_path / "out", dataset_uri=str(tmp_path / "src"))
    assert manifest["silent_clips"] == ["2-1000-A-0.wav"]


def test_the_manifest_records_the_source_without_its_secrets(tmp_path, monkeypatch):
    from apt_uss.data import dataset

    _mini_esc50(tmp_path / "src")
    archive = _zip_dir(tmp_path / "src", tmp_path / "esc.zip")
    monkeypatch.setattr(dataset, "fetch_uri", lambda uri, sha256="", what="": archive)  # as a download would
    manifest = fetch_dataset("esc50", tmp_path / "out", dataset_uri="https://u:pw@h.example/esc.zip?Signature=S1G")
    assert manifest["source_uri"] == "https://***@h.example/esc.zip?***"
    assert "S1G" not in (tmp_path / "out" / "dataset.json").read_text()


def test_default_esc50_source_is_the_official_archive():
    assert ESC50_URL == "https://github.com/karolpiczak/ESC-50/archive/master.zip"


def test_remote_scheme_not_supported(tmp_path):
    with pytest.raises(AptUssError, match="unsupported scheme 'ftp'"):
        fetch_dataset("esc50", tmp_path / "out", dataset_uri="ftp://x/esc50.zip")
