"""The card's held-out seen-class check (steps.backbone.separation_check) on the check mixtures of a given seed, so
separators trained with different seeds are scored on the same mixtures (the card draws them with its own seed).

  .venv/bin/python docs/measurements/separator_seed-2026-12-06/held_out_seen_check.py CHECK_SEED CHECKPOINT...
(CHECKPOINT "" : the shipped weights)
"""
import json
import sys

from apt_uss.models.backbone import BackboneSpec
from apt_uss.params.backbone_recipe import CLIPS_PER_CLASS, SEEN_CLASSES, VAL_CLIPS
from apt_uss.steps import backbone as steps_backbone

check_seed = int(sys.argv[1])
corpus = steps_backbone._corpus("debian_sounds", SEEN_CLASSES, CLIPS_PER_CLASS, VAL_CLIPS, 0)
for checkpoint in sys.argv[2:]:
    model = BackboneSpec(name="demo", separator_checkpoint_uri=checkpoint).load().eval()
    checks = steps_backbone.separation_check(model, *corpus, seed=check_seed)
    print(json.dumps({"checkpoint": checkpoint or "shipped", "check_seed": check_seed,
                      **{k: round(v, 3) for k, v in checks.items()}}), flush=True)
