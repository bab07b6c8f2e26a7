import hashlib

import numpy as np
import pytest
import soundfile as sf

from apt_uss.data.dataset import fetch_dataset, load_metadata
from apt_uss.data.synthetic import write_synthetic_dataset
from apt_uss.errors import AptUssError


def _digest(folder):
    h = hashlib.sha256()
    for path in sorted((folder / "audio").iterdir()):
        h.update(path.read_bytes())
    return h.hexdigest()


def test_layout_and_metadata_match_esc50(tiny_dataset):
    meta = load_metadata(tiny_dataset)
    assert list(meta.columns[:4]) == ["filename", "fold", "target", "category"]
    assert len(meta) == 3 * 40
    assert (meta.groupby(["target", "fold"]).size() == 8).all()
    assert sorted(meta["fold"].unique()) == [1, 2, 3, 4, 5]
    row = meta.iloc[0]
    assert row["filename"].startswith(f"{row['fold']}-") and row["filename"].endswith(f"-{row['target']}.wav")
    info = sf.info(tiny_dataset / "audio" / row["filename"])
    assert (info.samplerate, info.channels, info.frames) == (32000, 1, 160000)


def test_same_seed_same_audio_in_one_process_or_several_other_seed_other_audio(tmp_path, tiny_dataset):
    one = write_synthetic_dataset(tmp_path / "a", n_classes=3, seed=0)
    several = write_synthetic_dataset(tmp_path / "c", n_classes=3, seed=0, processes=3)  # one process per class
    write_synthetic_dataset(tmp_path / "b", n_classes=3, seed=1)
    assert _digest(tmp_path / "a") == _digest(tiny_dataset) == _digest(tmp_path / "c")
    assert one.equals(several) and (tmp_path / "a/meta/esc50.csv").read_bytes() == (tmp_path / "c/meta/esc50.csv").read_bytes()
    assert _digest(tmp_path / "b") != _digest(tiny_dataset)


def test_a_failed_worker_process_leaves_the_set_to_this_process(tmp_path, tiny_dataset, monkeypatch, caplog):
    from concurrent.futures.process import BrokenProcessPool

    from apt_uss.data import synthetic

    class DeadPool:  # as a pool whose workers cannot start (a script without a main guard) or are killed
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def map(self, *args):
            raise BrokenProcessPool("a child process terminated abruptly")

    monkeypatch.setattr(synthetic, "ProcessPoolExecutor", DeadPool)
    with caplog.at_level("WARNING", logger="apt_uss.data.synthetic"):
        meta = write_synthetic_dataset(tmp_path / "a", n_classes=3, seed=0, processes=2)
    assert "writing the set in this process" in caplog.text
    assert len(meta) == 120 and _digest(tmp_path / "a") == _digest(tiny_dataset)


def _band(audio, sr=32000):
    power = np.abs(np.fft.rfft(audio)) ** 2
    cdf = np.cumsum(power) / power.sum()
    freqs = np.fft.rfftfreq(len(audio), 1 / sr)
    return freqs[np.searchsorted(cdf, 0.1)], freqs[np.searchsorted(cdf, 0.9)]


@pytest.mark.slow
def test_classes_overlap_in_frequency_and_vary_within(tmp_path):
    meta = write_synthetic_dataset(tmp_path / "d", n_classes=10, seed=0)
    bands, centroid_spread = {}, []
    for target, clips in meta.groupby("target"):
        audio = [sf.read(tmp_path / "d" / "audio" / f)[0] for f in clips["filename"][:8]]
        lows, highs = zip(*(_band(a) for a in audio))
        bands[target] = (np.median(lows), np.median(highs))
        mids = [np.sqrt(lo * hi) for lo, hi in zip(lows, highs)]
        centroid_spread.append(np.std(np.log2(mids)))
        # clips of one class are different sounds, not copies
        assert max(abs(np.corrcoef(audio[0], a)[0, 1]) for a in audio[1:]) < 0.5
    for t, (lo, hi) in bands.items():
        overlapping = [u for u, (lo2, hi2) in bands.items() if u != t and lo2 < hi and lo < hi2]
        assert overlapping, f"class {t} band {lo:.0f}-{hi:.0f} Hz overlaps no other class"
    assert np.median(centroid_spread) > 0.05  # per-clip band jitter exists within classes


def test_n_classes_out_of_range_is_refused_and_leaves_nothing(tmp_path):
    with pytest.raises(AptUssError, match="n_classes=51"):
        fetch_dataset("synthetic", tmp_path / "out", n_classes=51)
    assert not (tmp_path / "out").exists()
    assert list(tmp_path.iterdir()) == []
