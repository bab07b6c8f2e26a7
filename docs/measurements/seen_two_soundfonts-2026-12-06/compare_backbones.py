"""Scratch: baseline and APT (demo settings) on debian_sounds validation data, per backbone and selection seed.

Validation only: 5 shots and 4 held-out clips per class from folds 1-3 (folds 4-5 never read)."""
import json, logging, sys, time
from pathlib import Path
import numpy as np
from apt_uss.logs import configure_logging
from apt_uss.models.backbone import BackboneSpec
from apt_uss.steps.pipeline import fetch_dataset_step, split_folds_step, init_prompts_step
from apt_uss.tools import select_settings as sel
configure_logging()
out_root = Path(sys.argv[1]); seeds = [int(s) for s in sys.argv[2].split(",")]
backbones = dict(a.split("=", 1) for a in sys.argv[3:])  # tag=checkpoint path ("" : shipped)
D = sel.DEMO
rows = []
for tag, ckpt in backbones.items():
    spec = BackboneSpec(name="demo", separator_checkpoint_uri=ckpt)
    separator = spec.load().separator
    for s in seeds:
        t = time.monotonic()
        sel.SELECTION_SEED = s
        out = out_root / tag / f"s{s}"; out.mkdir(parents=True, exist_ok=True)
        data = out_root / "dataset-debian_sounds"
        if not (data / "dataset.json").is_file():
            fetch_dataset_step("debian_sounds", str(data), n_classes=D["n_classes"], seed=D["seed"])
        splits = out / "splits.csv"
        split_folds_step(str(data), str(splits), n_shot="5", shot_seed=s, validation_clips=4)
        prompts = out / "prompts_initial.npz"
        init_prompts_step(str(data), str(splits), str(prompts), str(out / "embeddings.npz"), backbone=spec)
        base = sel.validation_median_sdr(data, sel.validation_mixtures_dir(out, data, splits), prompts,
                                         D["mix_rule"], separator=separator)
        mixtures = sel._mixtures(out, data, splits, D["crop_rule"], D["epochs"])
        tuned = out / "prompts_tuned.npz"
        sel._tune(data, mixtures, prompts, tuned, D["lr"], D["loss_function"], separator=separator,
                  lr_schedule=D["lr_schedule"])
        apt = sel.validation_median_sdr(data, mixtures, tuned, D["mix_rule"], separator=separator)
        rows.append({"backbone": tag, "seed": s, "baseline": round(base, 3), "apt": round(apt, 3),
                     "seconds": round(time.monotonic() - t)})
        print(json.dumps(rows[-1]), flush=True)
(out_root / "rows.json").write_text(json.dumps(rows, indent=1))
for tag in backbones:
    r = [x for x in rows if x["backbone"] == tag]
    print(tag, "baseline mean %.2f" % np.mean([x["baseline"] for x in r]), "APT mean %.2f" % np.mean([x["apt"] for x in r]))
