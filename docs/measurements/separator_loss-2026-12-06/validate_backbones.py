"""Baseline and APT (the demo profile's settings) of several demo backbones on the real recordings' validation draws.

python validate_backbones.py OUT SEEDS TAG=CHECKPOINT [TAG=CHECKPOINT ...]   (CHECKPOINT "" : the shipped weights)

Validation data only, as `select_settings --selection-seeds` draws it: per seed, 5 shots and 4 held-out clips a class
from folds 1-3, its own mixtures (mix seed = the seed); folds 4-5 are never read. Each backbone's own SED embeds the
shots (the initial prompts), its separator is tuned and scored."""
import json
import sys
import time
from pathlib import Path

import numpy as np

from apt_uss.logs import configure_logging
from apt_uss.models.backbone import BackboneSpec
from apt_uss.steps.pipeline import fetch_dataset_step, init_prompts_step, split_folds_step
from apt_uss.tools import select_settings as sel

configure_logging()
out_root, seeds = Path(sys.argv[1]), [int(s) for s in sys.argv[2].split(",")]
backbones = dict(a.split("=", 1) for a in sys.argv[3:])
D = sel.DEMO
data = out_root / "dataset-debian_sounds"
if not (data / "dataset.json").is_file():
    fetch_dataset_step("debian_sounds", str(data), n_classes=D["n_classes"], seed=D["seed"])
rows = []
for tag, checkpoint in backbones.items():
    spec = BackboneSpec(name="demo", separator_checkpoint_uri=checkpoint)
    separator = spec.load().separator
    for seed in seeds:
        started = time.monotonic()
        out = out_root / tag / f"seed{seed}"
        out.mkdir(parents=True, exist_ok=True)
        splits = out / "splits.csv"
        split_folds_step(str(data), str(splits), n_shot="5", shot_seed=seed, validation_clips=4)
        prompts = out / "prompts_initial.npz"
        init_prompts_step(str(data), str(splits), str(prompts), str(out / "embeddings.npz"), backbone=spec)
        base = sel.validation_median_sdr(data, sel.validation_mixtures_dir(out, data, splits, seed), prompts,
                                         D["mix_rule"], separator=separator)
        mixtures = sel._mixtures(out, data, splits, D["crop_rule"], D["epochs"], seed)
        tuned = out / "tuned.npz"
        sel._tune(data, mixtures, prompts, tuned, D["lr"], D["loss_function"], separator=separator,
                  lr_schedule=D["lr_schedule"])
        apt = sel.validation_median_sdr(data, mixtures, tuned, D["mix_rule"], separator=separator)
        rows.append({"backbone": tag, "seed": seed, "baseline": round(base, 3), "apt": round(apt, 3),
                     "seconds": round(time.monotonic() - started)})
        print(json.dumps(rows[-1]), flush=True)
(out_root / "rows.json").write_text(json.dumps(rows, indent=1))
for tag in backbones:
    mine = [r for r in rows if r["backbone"] == tag]
    print(f"{tag}: baseline mean {np.mean([r['baseline'] for r in mine]):.2f} dB, "
          f"APT mean {np.mean([r['apt'] for r in mine]):.2f} dB over seeds {seeds}")
