"""Scratch (validation-only experiment): run a module with an exponential moving average of the separator's weights.

The recipe trains the demo separator for 4,000 steps and keeps its last weights. This wrapper keeps, beside them, an
exponential moving average of every parameter and floating buffer (batch-norm statistics too) after each optimizer
step, at decay EMA_DECAY (a horizon of about 1,000 steps; integer buffers are copied), and hands the step the
averaged weights: its held-out checks and `backbone.pt` are the average's. The recipe's own last weights, from the
same trajectory, go to CONTROL_OUT/backbone.pt (the same layout), a paired control free of the training-seed noise.
Nothing else changes: the draws, the steps and the optimizer are the recipe's.

  .venv/bin/python -m apt_uss shipped-sed --out RUN/sed
  EMA_CONTROL_OUT=RUN/control .venv/bin/python docs/measurements/separator_ema-2026-12-07/with_separator_ema.py \
      -m apt_uss pretrain-separator --sed-dir RUN/sed --out RUN/ema
  .venv/bin/python docs/measurements/separator_loss-2026-12-06/validate_backbones.py VAL 0,100,101 \
      ema=RUN/ema/backbone.pt control=RUN/control/backbone.pt

The first argument is `-m MODULE`; the rest are its arguments. The patch holds in this process only. Run as above on the
code of 463abfa (RUN=/tmp/ema, VAL=/tmp/ema/val; train.log, validation_output.txt); unchanged since."""
import copy
import os
import runpy
import sys
from pathlib import Path

import torch

from apt_uss.models import pretrain
from apt_uss.models.checkpoints import export_backbone

EMA_DECAY = 0.999
control_out = Path(os.environ["EMA_CONTROL_OUT"])
recipe_train_separator, recipe_descend = pretrain.train_separator, pretrain._descend


def tensors(module):
    return [t for t in [*module.parameters(), *module.buffers()]]


def train_separator_with_ema(separator, sed, *args, **kwargs):
    average = copy.deepcopy(separator).requires_grad_(False)
    pairs = [(a, m) for a, m in zip(tensors(average), tensors(separator))]
    floating = [(a, m) for a, m in pairs if a.is_floating_point()]
    counts = [(a, m) for a, m in pairs if not a.is_floating_point()]

    def descend(optimizer, loss):
        value = recipe_descend(optimizer, loss)
        with torch.no_grad():
            torch._foreach_lerp_([a for a, _ in floating], [m.detach() for _, m in floating], 1 - EMA_DECAY)
            for a, m in counts:
                a.copy_(m)
        return value

    pretrain._descend = descend
    try:
        losses = recipe_train_separator(separator, sed, *args, **kwargs)
    finally:
        pretrain._descend = recipe_descend
    control_out.mkdir(parents=True, exist_ok=False)
    export_backbone(sed, separator, control_out / "backbone.pt")
    drift = max(float((a - m).abs().max()) for a, m in floating)
    separator.load_state_dict(average.state_dict())
    separator.eval().requires_grad_(False)
    print(f"separator: the recipe's last weights written to {control_out / 'backbone.pt'}; the step goes on with "
          f"their moving average (decay {EMA_DECAY}; largest difference {drift:.4g})", flush=True)
    return losses


pretrain.train_separator = train_separator_with_ema
print(f"separator pretraining patched: moving average of the weights, decay {EMA_DECAY}", flush=True)

if sys.argv[1] != "-m":
    sys.exit("usage: with_separator_ema.py -m MODULE [ARGS ...]")
module = sys.argv[2]
sys.argv = [module, *sys.argv[3:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
