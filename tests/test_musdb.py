import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from apt_uss.data.clips import ClipStore, read_clip
from apt_uss.data.dataset import fetch_dataset, load_metadata
from apt_uss.data.mixtures import render_mixture
from apt_uss.data.musdb import STEMS, simulate_stem_mixtures, split_tracks
from apt_uss.errors import AptUssError

SR = 44100
SECONDS = 5.0


def make_musdb_hq(root, train=3, test=2, silent_vocals=("test", 1)):
    """A MUSDB18-HQ-layout dataset: <subset>/<track>/{mixture,vocals,drums,bass,other}.wav, 44.1 kHz stereo."""
    rng = np.random.default_rng(0)
    t = np.arange(int(SR * SECONDS)) / SR
    for subset, count in (("train", train), ("test", test)):
        for k in range(count):
            folder = root / subset / f"Artist {k} - Song {subset} {k}"
            folder.mkdir(parents=True)
            stems = {
                "vocals": 0.2 * np.sin(2 * np.pi * (300 + 20 * k) * t) * (1 + np.sin(2 * np.pi * 3 * t)),
                "drums": 0.3 * (rng.random(len(t)) < 0.001) * rng.standard_normal(len(t)),
                "bass": 0.3 * np.sin(2 * np.pi * (55 + 5 * k) * t),
                "other": 0.05 * rng.standard_normal(len(t)),
            }
            if (subset, k) == silent_vocals:
                stems["vocals"] = 0 * t  # an instrumental: no vocals
            stems = {name: 0.5 * audio for name, audio in stems.items()}  # mixture peak stays below 1 (PCM)
            for name, audio in stems.items():
                sf.write(folder / f"{name}.wav", np.stack([audio, 0.9 * audio], axis=1), SR)
            mixture = sum(stems.values())
            sf.write(folder / "mixture.wav", np.stack([mixture, 0.9 * mixture], axis=1), SR)
    return root


@pytest.fixture(scope="module")
def musdb_artifact(tmp_path_factory):
    root = make_musdb_hq(tmp_path_factory.mktemp("musdb") / "MUSDB18-HQ")
    out = root.parent / "artifact"
    manifest = fetch_dataset("musdb18", out, dataset_uri=str(root))
    return out, manifest


def test_ingest_converts_every_stem_and_reports_silence(musdb_artifact):
    out, manifest = musdb_artifact
    meta = load_metadata(out)
    assert len(meta) == 5 * 4 and set(meta["category"]) == set(STEMS)
    assert manifest["tracks"] == {"test": 2, "train": 3} and manifest["layout"] == "wav"
    assert manifest["silent_clips"] == ["test/Artist 1 - Song test 1/vocals.wav"]
    assert manifest["source_formats"] == {"44100 Hz x 2 ch": 5}
    row = meta.iloc[0]
    stem, mixture = read_clip(out, row["filename"]), read_clip(out, row["mixture"])
    assert len(stem) == len(mixture) == int(SECONDS * 32000) == row["samples"]
    # the stems still add up to the mixture after conversion
    total = sum(read_clip(out, f) for f in meta.loc[meta["track"] == row["track"], "filename"])
    assert np.abs(total - mixture).max() < 1e-3


def test_split_is_official_nested_and_leaves_out_silent_stems(musdb_artifact):
    meta = load_metadata(musdb_artifact[0])
    one, two = split_tracks(meta, 1, 0), split_tracks(meta, 2, 0)
    tracks = lambda s: set(s.loc[s["split"] == "train", "track"])  # noqa: E731
    assert tracks(one) < tracks(two) and len(tracks(split_tracks(meta, None, 0))) == 3
    assert set(one.loc[one["split"] == "test", "subset"]) == {"test"}
    assert "test/Artist 1 - Song test 1/vocals.wav" not in set(one["filename"])
    with pytest.raises(AptUssError, match="n_shot=4 is larger than the 3 MUSDB18 training tracks"):
        split_tracks(meta, 4, 0)


def test_stem_mixtures_use_the_tracks_own_mixture_in_2s_segments(musdb_artifact):
    out = musdb_artifact[0]
    splits = split_tracks(load_metadata(out), None, 0)
    crop = 64000
    train, test = simulate_stem_mixtures(splits, seed=0, epochs=2, crop_samples=crop)
    assert (train.groupby("epoch").size() == 12).all()  # 3 tracks x 4 stems
    assert train["target_offset"].between(0, 160000 - crop).all()
    # 2 full 2-s segments in each 5-s test stem; 7 non-silent test stems
    assert len(test) == 7 * 2 and set(test["target_offset"]) == {0, crop}
    row = next(test.itertuples(index=False))
    mixture, target = render_mixture(row, ClipStore(out), "energy_match")
    np.testing.assert_array_equal(mixture, read_clip(out, row.mixture_file)[row.target_offset:][:crop])
    np.testing.assert_array_equal(target, read_clip(out, row.target_file)[row.target_offset:][:crop])
    # Training crops of another length leave the test protocol's 2-s segments as they are.
    longer_train, same_test = simulate_stem_mixtures(splits, seed=0, epochs=1, crop_samples=2 * crop)
    assert (longer_train["length"] == 2 * crop).all()
    pd.testing.assert_frame_equal(same_test, test)


def test_loud_stem_crops_read_the_stems_and_keep_the_tracks(musdb_artifact):
    out = musdb_artifact[0]
    splits = split_tracks(load_metadata(out), None, 0)
    store = ClipStore(out)
    uniform, _ = simulate_stem_mixtures(splits, seed=0, epochs=3, crop_samples=16000)
    loud, _ = simulate_stem_mixtures(splits, seed=0, epochs=3, crop_samples=16000, crop_rule="loud", clips=store)
    assert list(loud["target_file"]) == list(uniform["target_file"])
    # The sparse drum stem is where crops differ most: the loud rule keeps more of its hits.
    drums = loud["target_file"].str.endswith("drums.wav").to_numpy()

    def energy(table):
        return np.array([np.square(store.segment(f, o, 16000)).sum()
                         for f, o in zip(table["target_file"][drums], table["target_offset"][drums])])

    assert energy(loud).sum() > energy(uniform).sum()


def test_missing_stem_and_unreadable_audio_are_named(tmp_path):
    root = make_musdb_hq(tmp_path / "m", train=1, test=1)
    bass = root / "train" / "Artist 0 - Song train 0" / "bass.wav"
    bass.write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(AptUssError, match="train/Artist 0 - Song train 0 bass is not readable audio"):
        fetch_dataset("musdb18", tmp_path / "out", dataset_uri=str(root))
    bass.unlink()
    with pytest.raises(AptUssError, match="train/Artist 0 - Song train 0 has no bass stem"):
        fetch_dataset("musdb18", tmp_path / "out", dataset_uri=str(root))
    assert not (tmp_path / "out").exists()


def test_musdb_needs_a_source(tmp_path):
    with pytest.raises(AptUssError, match="dataset=musdb18 needs dataset_uri"):
        fetch_dataset("musdb18", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AptUssError, match="no MUSDB18 layout"):
        fetch_dataset("musdb18", tmp_path / "out", dataset_uri=str(tmp_path / "empty"))


def test_stem_mp4_layout_is_decoded(tmp_path):
    """MUSDB18 proper: one multi-stream .stem.mp4 per track (mixture, drums, bass, other, vocals)."""
    import stempeg

    t = np.arange(int(SR * 3)) / SR
    for subset in ("train", "test"):
        (tmp_path / "musdb18" / subset).mkdir(parents=True)
        sources = [0.1 * np.sin(2 * np.pi * f * t) for f in (200.0, 60.0, 1000.0, 440.0)]  # drums bass other vocals
        streams = np.stack([sum(sources), *sources])[:, :, None].repeat(2, axis=2).astype(np.float32)
        stempeg.write_stems(str(tmp_path / "musdb18" / subset / f"Band - {subset}.stem.mp4"), streams,
                            sample_rate=SR, writer=stempeg.StreamsWriter(codec="aac"))
    manifest = fetch_dataset("musdb18", tmp_path / "out", dataset_uri=str(tmp_path / "musdb18"))
    assert manifest["layout"] == "stems" and manifest["tracks"] == {"test": 1, "train": 1}
    meta = load_metadata(tmp_path / "out").set_index("category")
    vocals = read_clip(tmp_path / "out", meta.loc["vocals", "filename"].iloc[0])
    bass = read_clip(tmp_path / "out", meta.loc["bass", "filename"].iloc[0])
    # each stem kept its own content: 440 Hz vocals, 60 Hz bass
    for audio, freq in ((vocals, 440.0), (bass, 60.0)):
        spectrum = np.abs(np.fft.rfft(audio))
        assert abs(np.fft.rfftfreq(len(audio), 1 / 32000)[spectrum.argmax()] - freq) < 2


def test_a_rendered_stem_louder_than_its_mixture_is_clipped_not_wrapped(tmp_path, monkeypatch):
    """Where stems cancel in the mix, a stem can peak above the mixture the scale is set by."""
    from apt_uss.data import musdb_rendered

    def render(soundfont, notes, programs, seconds, workdir, name, sample_rate):
        audio = np.zeros(int(seconds * sample_rate))
        if name.endswith("drums"):
            audio[100], audio[200] = 0.5, 0.2
        elif name.endswith("bass"):
            audio[100] = -0.45
        return audio

    monkeypatch.setattr(musdb_rendered, "render_midi", render)
    musdb_rendered.build_musdb_rendered(tmp_path / "sf2", tmp_path / "out", tmp_path / "work",
                                        tracks={"train": 1}, seconds=1.0)
    (folder,) = (tmp_path / "out" / "train").iterdir()
    read = {stem: sf.read(folder / f"{stem}.wav", dtype="int16")[0].astype(np.int32)
            for stem in ("drums", "bass", "other", "vocals", "mixture")}
    assert read["drums"][100] == 32767  # clipped, where a cast wrapped it to 8190
    np.testing.assert_array_equal(read["mixture"], read["drums"] + read["bass"] + read["other"] + read["vocals"])
