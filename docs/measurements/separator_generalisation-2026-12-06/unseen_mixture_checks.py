"""Three checks on the shipped demo separator with the real recordings' validation mixtures (those validate_backbones.py
drew from folds 1-3 for selection seeds 0, 100, 101; 120 mixtures; this script reads nothing else):

  oracle    the best magnitude mask on the mixture's STFT (|S|/|M| clipped to [0, 1], the mixture's phase) at four STFT
            sizes, the demo separator's n_fft 512 / hop 256 among them: what a mask of the separator's kind can reach;
  chunks    the baseline prompt's estimate of the whole 5-s mixture against the mixture separated in 2-s pieces (the
            training crops' length) and joined: does the separator lose anything on clips longer than it trained on;
  gain      the same estimate with the mixture scaled by 0.25-4 before separating (and the estimate scaled back):
            does the level the separator hears matter.

python unseen_mixture_checks.py VAL_ROOT      (VAL_ROOT as for ../separator_diagnosis-2026-12-06/diagnose_queries.py,
                                               with its `shipped` draws)
"""
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from apt_uss.data.clips import ClipStore
from apt_uss.data.mixtures import render_mixture
from apt_uss.evaluation.evaluate import separate
from apt_uss.evaluation.metrics import bss_sdr
from apt_uss.method.prompts import load_prompts
from apt_uss.models.backbone import BackboneSpec
from apt_uss.models.frozen_separator import frozen_separator

root = Path(sys.argv[1])
store = ClipStore(str(root / "dataset-debian_sounds"))
separator = frozen_separator(BackboneSpec(name="demo").load().separator)
STFTS = ((256, 128), (512, 256), (1024, 320), (2048, 320))
GAINS = (0.25, 0.5, 1.0, 2.0, 4.0)
PIECE = 64000  # 2 s at 32 kHz


def oracle_mask_estimate(m: np.ndarray, s: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    window = torch.hann_window(n_fft, dtype=torch.float64)
    spec = lambda x: torch.stft(torch.from_numpy(x).double(), n_fft, hop, window=window, return_complex=True)
    mixture = spec(m)
    mask = (spec(s).abs() / mixture.abs().clamp_min(1e-12)).clamp(0, 1)
    return torch.istft(mask * mixture, n_fft, hop, window=window, length=len(m)).numpy()


def in_pieces(m: np.ndarray, query: np.ndarray) -> np.ndarray:
    out = np.zeros_like(m)
    for start in range(0, len(m), PIECE):
        piece = m[start : start + PIECE]
        out[start : start + len(piece)] = separate(separator, piece[None], query[None], "cpu")[0]
    return out


rows = []
for seed in (0, 100, 101):
    draw = root / "shipped" / f"seed{seed}"
    mixtures = pd.read_csv(next(draw.glob("mixtures/*-random-e1*")) / "validation_mixtures.csv", keep_default_na=False)
    initial, targets, _ = load_prompts(draw / "prompts_initial.npz")
    row_of = {int(t): i for i, t in enumerate(targets)}
    for r in mixtures.itertuples(index=False):
        m, s = render_mixture(r, store, "energy_match")
        query = initial[row_of[int(r.target)]].astype(np.float32)
        rec = {"seed": seed, "target_class": r.target_class}
        for n_fft, hop in STFTS:
            rec[f"oracle_{n_fft}"] = bss_sdr(s, oracle_mask_estimate(m, s, n_fft, hop))
        scaled = separate(separator, np.stack([m * g for g in GAINS]).astype(np.float32), np.stack([query] * len(GAINS)),
                          "cpu")
        for g, e in zip(GAINS, scaled):
            rec[f"gain_{g}"] = bss_sdr(s, e / g)
        rec["in_2s_pieces"] = bss_sdr(s, in_pieces(m, query))
        rows.append(rec)
table = pd.DataFrame(rows)
pd.set_option("display.width", 250)
pd.set_option("display.max_columns", None)
columns = [c for c in table.columns if c not in ("seed", "target_class")]
print(f"{len(table)} mixtures; pooled median SDR (dB)\n", table[columns].median().round(2).to_string())
print("per target class (median over its mixtures)\n", table.groupby("target_class")[columns].median().round(2))
