"""Validation baseline of the shipped weights with each initial prompt rescaled to its clips' mean embedding norm.

Run after validate_backbones.py /tmp/valbb 0,100,101 shipped= ... (it reads that run's draws; folds 1-3 only)."""
import json
from pathlib import Path

import numpy as np

from apt_uss.logs import configure_logging
from apt_uss.method.prompts import load_prompts, save_prompts
from apt_uss.models.backbone import BackboneSpec
from apt_uss.tools import select_settings as sel

configure_logging()
sep = BackboneSpec(name="demo").load().separator
data = Path("/tmp/valbb/dataset-debian_sounds")
for s in (0, 100, 101):
    out = Path(f"/tmp/valbb/shipped/seed{s}")
    e = np.load(out / "embeddings.npz"); X, t = e["embeddings"], e["targets"]
    P, targets, names = load_prompts(out / "prompts_initial.npz")
    res = {}
    for tag, scale in (("mean", None), ("norm_matched", "clip")):
        Q = P.copy()
        if scale:
            for i, c in enumerate(targets):
                Q[i] *= np.linalg.norm(X[t == c], axis=1).mean() / np.linalg.norm(Q[i])
        path = out / f"prompts_{tag}.npz"; save_prompts(path, Q, targets, names)
        res[tag] = sel.validation_median_sdr(data, sel.validation_mixtures_dir(out, data, out / "splits-5shot-4val.csv", s), path,
                                             sel.DEMO["mix_rule"], separator=sep)
    print(s, json.dumps({k: round(v, 3) for k, v in res.items()}), flush=True)
