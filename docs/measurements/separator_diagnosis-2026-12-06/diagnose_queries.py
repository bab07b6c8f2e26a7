"""What a demo separator does with each query on the real recordings' validation mixtures (those validate_backbones.py
drew from folds 1-3; this script reads nothing else).

python diagnose_queries.py VAL_ROOT TAG CHECKPOINT OUT_CSV      (CHECKPOINT "" : the shipped weights)

VAL_ROOT is the OUT of ../separator_loss-2026-12-06/validate_backbones.py, already run for TAG with CHECKPOINT on
selection seeds 0, 100, 101 (e.g. `validate_backbones.py VAL_ROOT 0,100,101 shipped=`; run from the repository root
with .venv/bin/python): each VAL_ROOT/TAG/seed{S} holds that draw's initial prompts, tuned prompts and validation
mixtures. For every validation mixture m = s + n (target s, energy-matched interferer n) it scores the estimate of
  mean             the initial prompt (the baseline: mean embedding of the class's 5 shots)
  tuned            the tuned prompt (APT at the demo settings)
  own              the test target clip's own embedding (the SED on that very clip, as its prompt would embed it)
  interferer_mean  the interferer's class's initial prompt (scored against the target: how much of s it keeps)
and of half the mixture, 0.5 m (no separator: 3.01 dB when s and n have equal energy and are uncorrelated).
For each estimate e it also fits e ~ a s + b n by least squares: a is how much of the target it keeps, b how much
of the interferer."""
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from apt_uss.data.clips import ClipStore
from apt_uss.data.mixtures import render_mixture
from apt_uss.evaluation.evaluate import separate
from apt_uss.evaluation.metrics import bss_sdr
from apt_uss.method.prompts import embed_clips, load_prompts
from apt_uss.models.backbone import BackboneSpec
from apt_uss.models.frozen_separator import frozen_separator

root, tag, checkpoint, out_csv = Path(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
store = ClipStore(str(root / "dataset-debian_sounds"))
backbone = BackboneSpec(name="demo", separator_checkpoint_uri=checkpoint).load()
separator, sed = frozen_separator(backbone.separator), backbone.sed.eval()


def target_and_interferer_shares(s: np.ndarray, n: np.ndarray, e: np.ndarray) -> np.ndarray:
    basis = np.stack([s, n], 1).astype(np.float64)
    return np.linalg.lstsq(basis, e.astype(np.float64), rcond=None)[0]


rows = []
for seed in (0, 100, 101):
    draw = root / tag / f"seed{seed}"
    mixtures = pd.read_csv(next(draw.glob("mixtures/*-random-e1*")) / "validation_mixtures.csv", keep_default_na=False)
    initial, targets, _ = load_prompts(draw / "prompts_initial.npz")
    tuned, _, _ = load_prompts(draw / "tuned.npz")
    row_of = {int(t): i for i, t in enumerate(targets)}
    files = sorted(set(mixtures["target_file"]))
    own = embed_clips(sed, ((f, store.segment(f, 0, None)) for f in files), len(files), 32000)
    for r in mixtures.itertuples(index=False):
        m, s = render_mixture(r, store, "energy_match")
        queries = {"mean": initial[row_of[int(r.target)]], "tuned": tuned[row_of[int(r.target)]],
                   "own": own[r.target_file], "interferer_mean": initial[row_of[int(r.interferer)]]}
        estimates = separate(separator, np.stack([m] * len(queries)),
                             np.stack(list(queries.values())).astype(np.float32), "cpu")
        rec = {"seed": seed, "mixture_id": r.mixture_id, "target_class": r.target_class,
               "interferer_class": r.interferer_class, "half_mixture": bss_sdr(s, 0.5 * m)}
        for name, e in zip(queries, estimates):
            rec[name] = bss_sdr(s, e)
            rec[f"{name}_a"], rec[f"{name}_b"] = target_and_interferer_shares(s, m - s, e)
        rows.append(rec)
table = pd.DataFrame(rows)
table.to_csv(out_csv, index=False, float_format="%.4f")
pd.set_option("display.width", 200)
sdrs = ["half_mixture", "mean", "tuned", "own", "interferer_mean"]
print("pooled median SDR (dB) per draw\n", table.groupby("seed")[sdrs].median().round(2))
print("pooled over the three draws (median)\n", table[sdrs + [f"{q}_{c}" for q in sdrs[1:] for c in "ab"]].median().round(2))
print("per target class (median over its 12 mixtures)\n",
      table.groupby("target_class")[["mean", "own", "tuned", "mean_a", "mean_b", "tuned_a", "tuned_b"]].median().round(2))
