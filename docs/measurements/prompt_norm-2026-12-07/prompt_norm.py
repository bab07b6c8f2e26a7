"""Is the baseline prompt's norm what the shipped separator lacks? Validation draws only (folds 1-3).

  .venv/bin/python docs/measurements/prompt_norm-2026-12-07/prompt_norm.py VAL TAG

VAL is the OUT of ../separator_loss-2026-12-06/validate_backbones.py, already run for TAG on selection seeds 0, 100,
101 (any backbone: only its draws are read, the splits and the validation mixtures, which depend on the seed alone).
The shipped weights embed each class's 5 shots (`embed_clips`, as the pipeline makes an initial prompt) and separate
every validation mixture with four queries: the mean embedding (the baseline prompt), the same rescaled to the mean
norm of its shots' embeddings, and the mean times 1.25 and 0.8."""
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from apt_uss.data.clips import ClipStore
from apt_uss.data.mixtures import render_mixture
from apt_uss.evaluation.evaluate import separate
from apt_uss.evaluation.metrics import bss_sdr
from apt_uss.method.prompts import embed_clips
from apt_uss.models.backbone import BackboneSpec
from apt_uss.models.frozen_separator import frozen_separator

root, tag = Path(sys.argv[1]), sys.argv[2]
store = ClipStore(str(root / "dataset-debian_sounds"))
backbone = BackboneSpec(name="demo").load()
separator, sed = frozen_separator(backbone.separator), backbone.sed.eval()
rows, norms = [], []
for seed in (0, 100, 101):
    draw = root / tag / f"seed{seed}"
    splits = pd.read_csv(draw / "splits-5shot-4val.csv")
    shots = splits[splits.split == "train"]
    mixtures = pd.read_csv(next(draw.glob("mixtures/*-random-e1*")) / "validation_mixtures.csv", keep_default_na=False)
    files = sorted(set(shots.filename) | set(mixtures.target_file))
    emb = embed_clips(sed, ((f, store.segment(f, 0, None)) for f in files), len(files), 32000)
    mean, scaled = {}, {}
    for t, group in shots.groupby("target"):
        e = np.stack([emb[f] for f in group.filename])
        mean[int(t)] = e.mean(0)
        scaled[int(t)] = e.mean(0) * np.linalg.norm(e, axis=1).mean() / np.linalg.norm(e.mean(0))
        norms.append({"seed": seed, "target": int(t), "norm_of_mean": np.linalg.norm(e.mean(0)),
                      "mean_norm": np.linalg.norm(e, axis=1).mean()})
    for r in mixtures.itertuples(index=False):
        m, s = render_mixture(r, store, "energy_match")
        q = {"mean": mean[int(r.target)], "norm_matched": scaled[int(r.target)],
             "x1.25": 1.25 * mean[int(r.target)], "x0.8": 0.8 * mean[int(r.target)]}
        est = separate(separator, np.stack([m] * len(q)), np.stack(list(q.values())).astype(np.float32), "cpu")
        rows.append({"seed": seed, "target_class": r.target_class, **{k: bss_sdr(s, e) for k, e in zip(q, est)}})
n = pd.DataFrame(norms)
print("norm of the 5-shot mean / mean norm of the shots: median", round(float((n.norm_of_mean / n.mean_norm).median()), 3),
      "range", round(float((n.norm_of_mean / n.mean_norm).min()), 3), "-", round(float((n.norm_of_mean / n.mean_norm).max()), 3))
print("shot norms: median", round(float(n.mean_norm.median()), 2))
t = pd.DataFrame(rows)
cols = ["mean", "norm_matched", "x1.25", "x0.8"]
print("pooled median SDR per draw\n", t.groupby("seed")[cols].median().round(2))
print("per-draw mean\n", t.groupby("seed")[cols].median().mean().round(2))
print("pooled\n", t[cols].median().round(2))
