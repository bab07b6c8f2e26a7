"""Scratch (validation-only experiment): run a module with the SED pretraining done on mixup of its crops.

The recipe trains the demo SED as a softmax classifier of single loud crops of the 128 seen classes. HTS-AT was trained
on AudioSet with mixup: each example blended with another of its batch (the batch reversed) at a weight drawn from
Beta(0.5, 0.5) per example. Here every SED training batch is the recipe's (the same picks and crops from the
`pretrain_sed` stream), then each crop x_i becomes lam_i x_i + (1 - lam_i) x_(B-1-i) on the waveform, lam_i ~
Beta(0.5, 0.5) from a generator of its own, and the cross-entropy takes the matching soft target lam_i y_i + (1 - lam_i)
y_(B-1-i). Nothing else changes: the held-out accuracy is still measured on single crops, and the separator stage
(run without this wrapper, under the SED it writes) is the recipe's.

  .venv/bin/python docs/measurements/sed_mixup-2026-12-07/with_sed_mixup.py -m apt_uss pretrain-sed --out OUT/sed
  .venv/bin/python -m apt_uss pretrain-separator --sed-dir OUT/sed --out OUT/sep
  .venv/bin/python docs/measurements/separator_loss-2026-12-06/validate_backbones.py VAL 0,100,101 \
      mixup=OUT/sep/backbone.pt
  .venv/bin/python docs/measurements/separator_diagnosis-2026-12-06/diagnose_queries.py VAL mixup \
      OUT/sep/backbone.pt rows.csv

The first argument is `-m MODULE`; the rest are its arguments. The patch holds in this process only."""
import runpy
import sys
import time

import numpy as np
import torch

from apt_uss.models import pretrain
from apt_uss.data.streams import stream

MIXUP_ALPHA = 0.5
MIXUP_STREAM_KEY = 99  # a scratch spawn key no registered stream uses


def train_sed_with_mixup(sed, clips, labels, steps, batch_size=16, lr=1e-3, seed=0,
                         sample_rate=pretrain.synthetic.SAMPLE_RATE):
    rng = stream("pretrain_sed", seed)
    lam_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(MIXUP_STREAM_KEY,)))
    n_classes = int(labels.max()) + 1
    crop = int(pretrain.CROP_SECONDS * sample_rate)
    sed.train().requires_grad_(True)
    optimizer = torch.optim.AdamW(sed.parameters(), lr=lr, weight_decay=1e-4)
    losses, started = [], time.monotonic()
    for step in range(1, steps + 1):
        pick = rng.integers(0, len(clips), batch_size)
        wav = torch.from_numpy(pretrain.loud_crops(clips[pick], rng, crop))
        lam = torch.from_numpy(lam_rng.beta(MIXUP_ALPHA, MIXUP_ALPHA, batch_size).astype(np.float32))[:, None]
        target = torch.nn.functional.one_hot(torch.from_numpy(labels[pick]), n_classes).float()
        wav = lam * wav + (1 - lam) * wav.flip(0)
        target = lam * target + (1 - lam) * target.flip(0)
        logits = torch.logit(sed(wav)["clipwise_output"], eps=1e-6)
        losses.append(pretrain._descend(optimizer, torch.nn.functional.cross_entropy(logits, target)))
        if step % 50 == 0 or step == steps:
            pretrain._progress("pretrain SED (mixup)", step, steps, started, ce=float(np.mean(losses[-50:])))
    sed.eval().requires_grad_(False)
    return losses


pretrain.train_sed = train_sed_with_mixup
print(f"SED pretraining patched: mixup on the waveform, Beta({MIXUP_ALPHA}, {MIXUP_ALPHA}), soft targets", flush=True)

if sys.argv[1] != "-m":
    raise SystemExit("usage: with_sed_mixup.py -m MODULE [ARGS...]")
module, sys.argv = sys.argv[2], [sys.argv[2], *sys.argv[3:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
