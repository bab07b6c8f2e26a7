import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from apt_uss.data.dataset import fetch_dataset, read_clip
from apt_uss.errors import AptUssError


def _mini_esc50(root, sr=44100):
    """Two classes x 5 folds x 1 clip, 44.1 kHz stereo, as ESC-50 ships."""
    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    rows = []
    t = np.arange(int(0.5 * sr)) / sr
    for target, (category, freq) in enumerate([("dog", 440.0), ("rain", 20000.0)]):
        for fold in range(1, 6):
            name = f"{fold}-{1000 + target}-A-{target}.wav"
            tone = 0.5 * np.sin(2 * np.pi * freq * t)
            sf.write(root / "audio" / name, np.stack([tone, tone], axis=1), sr)
            rows.append({"filename": name, "fold": fold, "target": target, "category": category,
                         "esc10": False, "src_file": 1000 + target, "take": "A"})
    pd.DataFrame(rows).to_csv(root / "meta" / "esc50.csv", index=False)


def test_local_esc50_is_converted_to_32k_mono_with_a_manifest(tmp_path):
    _mini_esc50(tmp_path / "src")
    manifest = fetch_dataset("esc50", tmp_path / "out", dataset_uri=(tmp_path / "src").as_uri())
    assert manifest["sample_rate"] == 32000 and manifest["n_clips"] == 10 and manifest["n_classes"] == 2
    assert manifest["clips_per_class_and_fold"]["dog"] == {str(f): 1 for f in range(1, 6)}
    assert json.loads((tmp_path / "out" / "dataset.json").read_text()) == manifest
    dog = read_clip(tmp_path / "out", "1-1000-A-0.wav")
    assert len(dog) == 16000
    # 440 Hz survives resampling; 20 kHz lies above the new Nyquist (16 kHz): filtered out, not aliased to 12 kHz
    assert np.sqrt(np.mean(dog**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)
    rain = read_clip(tmp_path / "out", "1-1001-A-1.wav")
    assert np.sqrt(np.mean(rain[1000:-1000] ** 2)) < 0.05


def test_missing_audio_named_and_nothing_written(tmp_path):
    _mini_esc50(tmp_path / "src")
    (tmp_path / "src" / "audio" / "3-1001-A-1.wav").unlink()
    with pytest.raises(AptUssError, match="lists 3-1001-A-1.wav"):
        fetch_dataset("esc50", tmp_path / "out", dataset_uri=str(tmp_path / "src"))
    assert not (tmp_path / "out").exists()


def test_esc50_without_uri_or_with_a_remote_one_is_explained(tmp_path):
    with pytest.raises(AptUssError, match="dataset=esc50 needs dataset_uri"):
        fetch_dataset("esc50", tmp_path / "out")
    with pytest.raises(AptUssError, match="dataset_uri='https://x/esc50.zip': only local paths"):
        fetch_dataset("esc50", tmp_path / "out", dataset_uri="https://x/esc50.zip")
