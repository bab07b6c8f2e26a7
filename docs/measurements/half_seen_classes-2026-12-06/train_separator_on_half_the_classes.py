"""Scratch (validation-only experiment): the shipped SED, a separator trained by the recipe on every other seen class
(the 64 even class ids of the 128, relabelled 0..63), same steps/batch/lr/query/loss: does the separator's count of
seen classes move the unseen classes' baseline?

Run from the repository root (it reads apt_uss/models/weights/demo.json), corpus built (`make corpus`):
  /usr/bin/time -v .venv/bin/python docs/measurements/half_seen_classes-2026-12-06/train_separator_on_half_the_classes.py OUT
writes OUT/sed (the shipped SED) and OUT/sep/backbone.pt with its card backbone.json. Then, as for this directory's
files:
  .venv/bin/python docs/measurements/separator_loss-2026-12-06/validate_backbones.py VAL 0,100,101 half=OUT/sep/backbone.pt
      (validation_rows.json is VAL/rows.json)
  .venv/bin/python docs/measurements/separator_diagnosis-2026-12-06/diagnose_queries.py VAL half OUT/sep/backbone.pt rows_half.csv
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from apt_uss.logs import configure_logging
from apt_uss.models.backbone import BackboneSpec
from apt_uss.steps import backbone as steps_backbone

configure_logging()
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
sed_dir = out / "sed"
sed_dir.mkdir(exist_ok=True)
bb = BackboneSpec(name="demo").load()
torch.save({k: v.cpu() for k, v in bb.sed.state_dict().items()}, sed_dir / steps_backbone.SED_CHECKPOINT)
card = json.loads(Path("apt_uss/models/weights/demo.json").read_text())
(sed_dir / steps_backbone.SED_CARD).write_text(json.dumps({k: card[k] for k in card if k.startswith("sed_")}))
all_classes = steps_backbone._corpus


def even_classes(corpus, n_classes, clips_per_class, val_clips, seed, corpus_uri=""):
    train_x, train_y, val_x, val_y = all_classes(corpus, 128, clips_per_class, val_clips, seed, corpus_uri)
    keep_train, keep_val = train_y % 2 == 0, val_y % 2 == 0
    print("classes kept", len(np.unique(train_y[keep_train])), "training clips", int(keep_train.sum()), flush=True)
    return train_x[keep_train], train_y[keep_train] // 2, val_x[keep_val], val_y[keep_val] // 2


steps_backbone._corpus = even_classes
started = time.monotonic()
record = steps_backbone.pretrain_separator_step(str(sed_dir), str(out / "sep"), n_classes=64)
print(json.dumps({k: record[k] for k in record if k.startswith(("val_", "separator_", "seen_"))}),
      time.monotonic() - started, flush=True)
