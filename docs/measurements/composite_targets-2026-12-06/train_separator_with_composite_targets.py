"""Scratch (validation-only experiment): the shipped SED and a separator trained by the recipe (4,000 steps, batch 8,
lr 2e-3 with its cosine decay, own query, L1, compiled, float32), except that in half of each batch's mixtures the
target is itself two sounds: the recipe's target crop plus, at equal energy, a loud crop of a clip of a third class
(neither the target's nor the interferer's). The own query embeds that composite target, so the separator also
trains on embeddings that are not those of one seen class, as an unseen class's prompt is not. Does that move the
unseen classes' baseline?

The recipe's draws (clips, crops, interferers) are unchanged; which items get a partner, and the partner clips and
crops, come from a generator of their own (seed PARTNER_SEED).

Run from the repository root (it reads apt_uss/models/weights/demo.json), corpus built (`make corpus`):
  /usr/bin/time -v .venv/bin/python docs/measurements/composite_targets-2026-12-06/train_separator_with_composite_targets.py OUT
writes OUT/sed (the shipped SED) and OUT/sep/backbone.pt with its card backbone.json. Then:
  .venv/bin/python docs/measurements/separator_loss-2026-12-06/validate_backbones.py VAL 0,100,101 composite=OUT/sep/backbone.pt
      (validation_rows.json is VAL/rows.json)
  .venv/bin/python docs/measurements/separator_diagnosis-2026-12-06/diagnose_queries.py VAL composite OUT/sep/backbone.pt rows_composite.csv
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from apt_uss.data.mixtures import mix
from apt_uss.logs import configure_logging
from apt_uss.models import pretrain
from apt_uss.models.backbone import BackboneSpec
from apt_uss.steps import backbone as steps_backbone

COMPOSITE_FRACTION = 0.5
PARTNER_SEED = 20261206

configure_logging()
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
sed_dir = out / "sed"
sed_dir.mkdir(exist_ok=True)
bb = BackboneSpec(name="demo").load()
torch.save({k: v.cpu() for k, v in bb.sed.state_dict().items()}, sed_dir / steps_backbone.SED_CHECKPOINT)
card = json.loads(Path("apt_uss/models/weights/demo.json").read_text())
(sed_dir / steps_backbone.SED_CARD).write_text(json.dumps({k: card[k] for k in card if k.startswith("sed_")}))

partner_rng = np.random.default_rng(PARTNER_SEED)
counts = {"items": 0, "composite": 0}


def energy(x: np.ndarray) -> float:
    return float(np.sum(x.astype(np.float64) ** 2))


def mixtures_with_composite_targets(clips, labels, rng, batch_size, crop, return_indices=False, speed_rng=None):
    """``pretrain.training_mixtures``'s draws from ``rng`` (the same calls in the same order), then composite targets."""
    if speed_rng is not None:
        raise SystemExit("composite targets are written for the recipe's plain crops (no speed augment)")
    first = rng.integers(0, len(clips), batch_size)
    other = rng.integers(0, len(clips), batch_size)
    same = labels[first] == labels[other]
    while same.any():
        other[same] = rng.integers(0, len(clips), int(same.sum()))
        same = labels[first] == labels[other]
    targets = pretrain.loud_crops(clips[first], rng, crop)
    interferers = pretrain.loud_crops(clips[other], rng, crop)
    for i in np.flatnonzero(partner_rng.random(batch_size) < COMPOSITE_FRACTION):
        while True:
            j = int(partner_rng.integers(0, len(clips)))
            if labels[j] not in (labels[first[i]], labels[other[i]]):
                break
        partner = pretrain.loud_crops(clips[j : j + 1], partner_rng, crop)[0]
        e_t, e_p = energy(targets[i]), energy(partner)
        if e_t > 0 and e_p > 0:
            targets[i] = (targets[i] + partner * np.float32(np.sqrt(e_t / e_p))).astype(np.float32)
            counts["composite"] += 1
    counts["items"] += batch_size
    mixtures = np.stack([mix(t, x, "energy_match") for t, x in zip(targets, interferers)])
    if return_indices:
        return mixtures, targets, labels[first], first
    return mixtures, targets, labels[first]


pretrain.training_mixtures = mixtures_with_composite_targets
started = time.monotonic()
record = steps_backbone.pretrain_separator_step(str(sed_dir), str(out / "sep"))
print(json.dumps({k: record[k] for k in record if k.startswith(("val_", "separator_", "seen_", "bytes"))}),
      json.dumps(counts), time.monotonic() - started, flush=True)
