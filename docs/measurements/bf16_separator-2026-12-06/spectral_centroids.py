"""Where the energy of bird_tweet lies against the seen classes: the median spectral centroid of each class's clips,
the unseen classes' validation clips (folds 1-3 of the real dataset at VAL_DATASET) and the 128 seen classes' training
clips (the recipe's corpus). Run from the repository root, corpus built:
  PYTHONPATH=. .venv/bin/python docs/measurements/bf16_separator-2026-12-06/spectral_centroids.py VAL_DATASET
(VAL_DATASET: e.g. the dataset-debian_sounds folder validate_backbones.py wrote; output: spectral_centroids.txt)."""
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from apt_uss.steps import backbone as steps_backbone


def centroid(x: np.ndarray, sample_rate: int) -> np.ndarray:
    power = np.abs(np.fft.rfft(x, axis=-1)) ** 2
    freqs = np.fft.rfftfreq(x.shape[-1], 1 / sample_rate)
    return (power * freqs).sum(-1) / power.sum(-1)


root = Path(sys.argv[1])
meta = pd.read_csv(next((root / "meta").glob("*.csv")))
unseen = {}
for _, row in meta[meta["fold"] <= 3].iterrows():
    x, sr = sf.read(root / "audio" / row["filename"])
    unseen.setdefault(row["category"], []).append(float(centroid(x, sr)))
unseen = {c: float(np.median(v)) for c, v in sorted(unseen.items())}
print("unseen classes, median centroid (Hz), folds 1-3:", {c: round(v) for c, v in unseen.items()})
train_x, train_y, _, _ = steps_backbone._corpus("debian_sounds", 128, 10, 2, 0, "")
seen = np.array([np.median(centroid(train_x[train_y == c], 32000)) for c in np.unique(train_y)])
print("seen classes, median centroid (Hz): min, quartiles, max", np.percentile(seen, [0, 25, 50, 75, 100]).round())
print(f"seen classes with a higher median centroid than bird_tweet ({unseen['bird_tweet']:.0f} Hz):",
      int((seen > unseen["bird_tweet"]).sum()), "of", len(seen))
