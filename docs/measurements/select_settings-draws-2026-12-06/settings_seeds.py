"""Scratch: the demo settings against the runners-up of the selection grid, on validation draws of other
selection seeds (debian_sounds, shipped weights; 5 shots and 4 held-out clips per class of folds 1-3)."""
import json, sys, time
from pathlib import Path
import numpy as np
from apt_uss.logs import configure_logging
from apt_uss.models.backbone import BackboneSpec
from apt_uss.steps.pipeline import fetch_dataset_step, split_folds_step, init_prompts_step
from apt_uss.tools import select_settings as sel
configure_logging()
out_root = Path(sys.argv[1]); seeds = [int(s) for s in sys.argv[2].split(",")]
candidates = [c.split(":") for c in sys.argv[3].split(",")]  # lr:loss:crop
D = sel.DEMO
separator = BackboneSpec(name="demo").load().separator
rows = []
data = out_root / "dataset-debian_sounds"
if not (data / "dataset.json").is_file():
    fetch_dataset_step("debian_sounds", str(data), n_classes=D["n_classes"], seed=D["seed"])
for s in seeds:
    sel.SELECTION_SEED = s
    out = out_root / f"s{s}"; out.mkdir(parents=True, exist_ok=True)
    splits = out / "splits.csv"
    split_folds_step(str(data), str(splits), n_shot="5", shot_seed=s, validation_clips=4)
    prompts = out / "prompts_initial.npz"
    init_prompts_step(str(data), str(splits), str(prompts), str(out / "embeddings.npz"))
    base = sel.validation_median_sdr(data, sel.validation_mixtures_dir(out, data, splits), prompts, D["mix_rule"],
                                     separator=separator)
    rows.append({"seed": s, "setting": "baseline", "sdr": round(base, 3)}); print(json.dumps(rows[-1]), flush=True)
    for lr, loss, crop in candidates:
        t = time.monotonic()
        mixtures = sel._mixtures(out, data, splits, crop, D["epochs"])
        tuned = out / f"tuned-{lr}-{loss}-{crop}.npz"
        sel._tune(data, mixtures, prompts, tuned, float(lr), loss, separator=separator)
        sdr = sel.validation_median_sdr(data, mixtures, tuned, D["mix_rule"], separator=separator)
        rows.append({"seed": s, "setting": f"lr{lr}-{loss}-{crop}", "sdr": round(sdr, 3),
                     "seconds": round(time.monotonic() - t)})
        print(json.dumps(rows[-1]), flush=True)
(out_root / "rows.json").write_text(json.dumps(rows, indent=1))
import pandas as pd
t = pd.DataFrame(rows).pivot(index="setting", columns="seed", values="sdr")
t["mean"] = t.mean(axis=1)
print(t.sort_values("mean", ascending=False).to_string(float_format=lambda v: f"{v:.2f}"))
