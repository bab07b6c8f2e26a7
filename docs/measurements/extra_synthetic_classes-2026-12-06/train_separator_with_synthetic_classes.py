"""Scratch (validation-only experiment): the shipped SED, a separator trained by the recipe on the real seen classes
plus the 128 synthetic seen classes (labels 128..255), same steps/batch/lr/query/loss.

Run from the repository root (it reads apt_uss/models/weights/demo.json), corpus built (`make corpus`):
  /usr/bin/time -v .venv/bin/python docs/measurements/extra_synthetic_classes-2026-12-06/train_separator_with_synthetic_classes.py OUT
writes OUT/sed (the shipped SED) and OUT/sep/backbone.pt with its card backbone.json. Then, as for this directory's
files:
  .venv/bin/python docs/measurements/separator_loss-2026-12-06/validate_backbones.py VAL 0,100,101 union=OUT/sep/backbone.pt
      (validation_rows.json is VAL/rows.json)
  .venv/bin/python docs/measurements/separator_diagnosis-2026-12-06/diagnose_queries.py VAL union OUT/sep/backbone.pt rows_union.csv
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from apt_uss.data import debian_sounds
from apt_uss.logs import configure_logging
from apt_uss.models import pretrain
from apt_uss.models.backbone import BackboneSpec
from apt_uss.steps import backbone as steps_backbone

configure_logging()
out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
sed_dir = out / "sed"; sed_dir.mkdir(exist_ok=True)
bb = BackboneSpec(name="demo").load()
torch.save({k: v.cpu() for k, v in bb.sed.state_dict().items()}, sed_dir / steps_backbone.SED_CHECKPOINT)
card = json.loads(Path("apt_uss/models/weights/demo.json").read_text())
(sed_dir / steps_backbone.SED_CARD).write_text(json.dumps({k: card[k] for k in card if k.startswith("sed_")}))

def union_corpus(corpus, n_classes, clips_per_class, val_clips, seed, corpus_uri=""):
    rx, ry = debian_sounds.load_seen_clips(n_classes, clips_per_class, corpus_uri)
    sx, sy = pretrain.seen_corpus(128, clips_per_class, seed)
    n = min(rx.shape[1], sx.shape[1])
    clips = np.concatenate([rx[:, :n], sx[:, :n]]); labels = np.concatenate([ry, sy + n_classes])
    held = (np.arange(len(clips)) % clips_per_class) >= clips_per_class - val_clips
    print("union corpus", clips.shape, rx.shape, sx.shape, flush=True)
    return clips[~held], labels[~held], clips[held], labels[held]

steps_backbone._corpus = union_corpus
t = time.monotonic()
rec = steps_backbone.pretrain_separator_step(str(sed_dir), str(out / "sep"))
print(json.dumps({k: rec[k] for k in rec if k.startswith(("val_", "separator_"))}), time.monotonic() - t, flush=True)
