"""Scratch (validation-only experiment): the shipped SED and a separator trained by the recipe at its full length
(4,000 steps, batch 8, lr 2e-3 + cosine, L1, compiled, float32) with the `other_clip` query: the SED embedding of a
loud crop of another recording of the target's class (`--separator-query other_clip`; tried before at 1,000 steps
only, on one validation draw). The recipe's mixtures are the same draws; the other clips come from `pretrain_query`.

Run from the repository root (it reads apt_uss/models/weights/demo.json), corpus built (`make corpus`):
  /usr/bin/time -v .venv/bin/python docs/measurements/other_clip_query-2026-12-06/train_separator_other_clip_query.py OUT
writes OUT/sed (the shipped SED) and OUT/sep/backbone.pt with its card backbone.json. Then:
  .venv/bin/python docs/measurements/separator_loss-2026-12-06/validate_backbones.py VAL 0,100,101 other_clip=OUT/sep/backbone.pt
      (validation_rows.json is VAL/rows.json)
  .venv/bin/python docs/measurements/separator_diagnosis-2026-12-06/diagnose_queries.py VAL other_clip OUT/sep/backbone.pt rows_other_clip.csv
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
out = Path(sys.argv[1])
sed_dir = out / "sed"
sed_dir.mkdir(parents=True, exist_ok=True)
bb = BackboneSpec(name="demo").load()
torch.save({k: v.cpu() for k, v in bb.sed.state_dict().items()}, sed_dir / steps_backbone.SED_CHECKPOINT)
card = json.loads(Path("apt_uss/models/weights/demo.json").read_text())
(sed_dir / steps_backbone.SED_CARD).write_text(json.dumps({k: card[k] for k in card if k.startswith("sed_")}))
t = time.monotonic()
rec = steps_backbone.pretrain_separator_step(str(sed_dir), str(out / "sep"), query="other_clip")
print(json.dumps({k: rec[k] for k in rec if k.startswith(("val_", "separator_"))}), time.monotonic() - t, flush=True)
