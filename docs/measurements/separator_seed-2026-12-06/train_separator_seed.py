"""Scratch (validation-only measurement): how far do the unseen classes' validation figures move between two
trainings of the same recipe? The shipped SED and a separator trained by the recipe exactly (4,000 steps, batch 8,
lr 2e-3 + cosine, own query, L1, compiled, float32) with another training seed: SEED changes the separator's initial
weights (`backbone_init`), the mixture draws (`pretrain_separator`) and the held-out seen-class check mixtures
(`pretrain_checks`), nothing else. The shipped separator is seed 0. Every comparison of the sections before this one
set one training of a variant against the shipped one; this is the noise such comparisons sit in.

Run from the repository root (it reads apt_uss/models/weights/demo.json), corpus built (`make corpus`):
  /usr/bin/time -v .venv/bin/python docs/measurements/separator_seed-2026-12-06/train_separator_seed.py OUT SEED
writes OUT/sed (the shipped SED) and OUT/sep/backbone.pt with its card backbone.json. Then:
  .venv/bin/python docs/measurements/separator_loss-2026-12-06/validate_backbones.py VAL 0,100,101 seed1=OUT/sep/backbone.pt
      (validation_rows.json is VAL/rows.json)
  .venv/bin/python docs/measurements/separator_diagnosis-2026-12-06/diagnose_queries.py VAL seed1 OUT/sep/backbone.pt rows_seed1.csv
"""
import json
import sys
import time
from pathlib import Path

import torch

from apt_uss.logs import configure_logging
from apt_uss.models.backbone import BackboneSpec
from apt_uss.steps import backbone as steps_backbone

configure_logging()
out, seed = Path(sys.argv[1]), int(sys.argv[2])
sed_dir = out / "sed"
sed_dir.mkdir(parents=True, exist_ok=True)
bb = BackboneSpec(name="demo").load()
torch.save({k: v.cpu() for k, v in bb.sed.state_dict().items()}, sed_dir / steps_backbone.SED_CHECKPOINT)
card = json.loads(Path("apt_uss/models/weights/demo.json").read_text())
(sed_dir / steps_backbone.SED_CARD).write_text(json.dumps({k: card[k] for k in card if k.startswith("sed_")}))
t = time.monotonic()
rec = steps_backbone.pretrain_separator_step(str(sed_dir), str(out / "sep"), seed=seed)
print(json.dumps({k: rec[k] for k in rec if k.startswith(("val_", "separator_", "seed"))}), time.monotonic() - t,
      flush=True)
