"""Scratch (validation-only measurement): the separator trained on uniform crops, as the evaluation mixes whole clips.

The recipe draws each training target and interferer as the loudest of 3 random 2-s crops (`pretrain.loud_crops`),
so the separator rarely hears a target that is quiet or silent for part of the crop. The evaluation mixes whole 5-s
clips, silences and decays included, and on held-out clips of the seen classes that protocol scores about 1 dB under
the loud-crop check (4.22 against 5.17 dB with a class-mean query). Here the separator's training crops (target and
interferer) are drawn uniformly (one random offset, `tries=1`); everything else is the recipe: the shipped SED, 4,000
steps of 8, lr 2e-3 with its cosine decay, own query (the SED embedding of the crop as drawn), L1, compiled, float32,
seed 0. The card's checks (SED accuracy, held-out seen mixtures) keep the recipe's loud crops, so they compare with the
shipped card's.

Run from the repository root, corpus built (`make corpus`):
  .venv/bin/python -m apt_uss shipped-sed --out OUT/sed
  /usr/bin/time -v .venv/bin/python docs/measurements/uniform_crops-2026-12-06/train_on_uniform_crops.py OUT
writes OUT/sep/backbone.pt with its card backbone.json. Then:
  .venv/bin/python docs/measurements/separator_loss-2026-12-06/validate_backbones.py VAL 0,100,101 uniform=OUT/sep/backbone.pt
  .venv/bin/python docs/measurements/separator_diagnosis-2026-12-06/diagnose_queries.py VAL uniform OUT/sep/backbone.pt rows_uniform.csv
  .venv/bin/python docs/measurements/separator_generalisation-2026-12-06/seen_classes_like_unseen.py OUT/sep/backbone.pt
"""
import json
import sys
import time
from pathlib import Path

from apt_uss.logs import configure_logging
from apt_uss.models import pretrain
from apt_uss.steps import backbone as steps_backbone

configure_logging()
out = Path(sys.argv[1])
recipe_train_separator, recipe_loud_crops = pretrain.train_separator, pretrain.loud_crops


def uniform_crops(clips, rng, crop, tries=3):
    """One random offset per clip (the recipe takes the loudest of ``tries``)."""
    return recipe_loud_crops(clips, rng, crop, tries=1)


def train_separator_on_uniform_crops(*args, **kwargs):
    # Inside train_separator (query "own", no speed augment) loud_crops is called only by training_mixtures.
    pretrain.loud_crops = uniform_crops
    try:
        return recipe_train_separator(*args, **kwargs)
    finally:
        pretrain.loud_crops = recipe_loud_crops


pretrain.train_separator = train_separator_on_uniform_crops
started = time.monotonic()
record = steps_backbone.pretrain_separator_step(str(out / "sed"), str(out / "sep"))
print(json.dumps({k: record[k] for k in record if k.startswith(("val_", "separator_", "seed"))}),
      f"{time.monotonic() - started:.0f} s", flush=True)
