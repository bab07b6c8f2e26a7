"""Scratch (validation-only experiment): does an SED embedding shaped by the separation loss move the unseen classes'
baseline? The recipe's separator training (4,000 steps, batch 8, lr 2e-3 with its cosine decay, own query, L1,
compiled separator, float32, the recipe's draws) with one change: the shipped SED is not frozen. Its parameters get
the separator's L1 gradient through the query (Adam, lr SED_LR below, on the same cosine decay to 5%), so the
embedding the separator is queried by, and that the pipeline's prompts are made of, learns what the separator needs
to follow, as some query-by-example separators train their query encoders with them. The SED starts
from the shipped classifier and runs in eval mode (its batch-norm statistics stay those of its classifier training);
there is no classification loss. The written checkpoint holds the fine-tuned SED under ``at_model.``, so the
validation embeds its prompts with it. ``SED_LR`` was set once, before any result (a tenth of the SED's own lr).

Run from the repository root (it reads apt_uss/models/weights/demo.json), corpus built (`make corpus`):
  /usr/bin/time -v .venv/bin/python docs/measurements/sed_finetuned_jointly-2026-12-06/train_separator_with_sed_finetuned.py OUT [STEPS]
writes OUT/sed (the shipped SED, the starting point) and OUT/sep/backbone.pt with its card backbone.json (STEPS: a
short eager check). Scored with
  .venv/bin/python docs/measurements/separator_loss-2026-12-06/validate_backbones.py VAL 0,100,101 joint=OUT/sep/backbone.pt
  .venv/bin/python docs/measurements/separator_diagnosis-2026-12-06/diagnose_queries.py VAL joint OUT/sep/backbone.pt CSV
"""
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from apt_uss.data import synthetic
from apt_uss.data.streams import stream
from apt_uss.logs import configure_logging
from apt_uss.models import pretrain
from apt_uss.models.backbone import BackboneSpec
from apt_uss.steps import backbone as steps_backbone

SED_LR = 1e-4
sed_trace: dict = {}


def train_separator_and_sed(separator, sed, clips, labels, steps, batch_size=8, lr=1e-3, seed=0,
                            sample_rate=synthetic.SAMPLE_RATE, compiled=False, query="own", clip_embeddings=None,
                            loss=torch.nn.functional.l1_loss, loss_name="l1", augment="none"):
    """``pretrain.train_separator`` for the recipe's own query, with the SED trained too (see the module's text)."""
    assert query == "own" and augment == "none"
    rng = stream("pretrain_separator", seed)  # the recipe's mixture draws
    crop = int(pretrain.CROP_SECONDS * sample_rate)
    sed.eval().requires_grad_(True)
    separator.train().requires_grad_(True)
    start = {k: v.detach().clone() for k, v in sed.named_parameters()}
    optimizer = torch.optim.Adam([{"params": separator.parameters(), "lr": lr},
                                  {"params": sed.parameters(), "lr": SED_LR}])
    # CosineAnnealingLR(T_max=steps, eta_min=0.05 lr) of the recipe, applied to both groups
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.05 + 0.95 * (1 + math.cos(math.pi * min(s, steps) / steps)) / 2)
    forward = pretrain.compiled_for_training(separator) if compiled else separator
    losses, started = [], time.monotonic()
    for step in range(1, steps + 1):
        mixtures, targets, _ = pretrain.training_mixtures(clips, labels, rng, batch_size, crop)
        target = torch.from_numpy(targets)
        query_embedding = sed(target)["latent_output"]
        estimate = forward(torch.from_numpy(mixtures), query_embedding)["wav"]
        losses.append(pretrain._descend(optimizer, loss(estimate, target)))
        schedule.step()
        if step % 25 == 0 or step == steps:
            pretrain._progress("pretrain separator + SED", step, steps, started,
                               **{loss_name: float(np.mean(losses[-25:]))})
    moved = sum(float((p.detach() - start[k]).norm() ** 2) for k, p in sed.named_parameters()) ** 0.5
    sed_trace["sed_parameter_change_norm"] = moved
    sed_trace["sed_parameter_norm_start"] = sum(float(v.norm() ** 2) for v in start.values()) ** 0.5
    separator.eval().requires_grad_(False)
    sed.eval().requires_grad_(False)
    return losses


configure_logging()
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
sed_dir = out / "sed"
sed_dir.mkdir(exist_ok=True)
bb = BackboneSpec(name="demo").load()
torch.save({k: v.cpu() for k, v in bb.sed.state_dict().items()}, sed_dir / steps_backbone.SED_CHECKPOINT)
card = json.loads(Path("apt_uss/models/weights/demo.json").read_text())
(sed_dir / steps_backbone.SED_CARD).write_text(json.dumps({k: card[k] for k in card if k.startswith("sed_")}))
pretrain.train_separator = train_separator_and_sed
started = time.monotonic()
smoke = {"steps": int(sys.argv[2]), "compiled": False} if len(sys.argv) > 2 else {}  # OUT STEPS: a quick eager check
record = steps_backbone.pretrain_separator_step(str(sed_dir), str(out / "sep"), **smoke)
# the fine-tuned SED's accuracy on the seen classes' held-out clips (its classifier head was not trained)
train_x, train_y, val_x, val_y = steps_backbone._corpus("debian_sounds", 128, 10, 2, 0)
model = BackboneSpec(name="demo", separator_checkpoint_uri=str(out / "sep" / steps_backbone.CHECKPOINT)).load()
record.update(sed_trace, sed_finetuned_lr=SED_LR,
              sed_val_accuracy_after_finetune=pretrain.sed_accuracy(model.sed.eval(), val_x, val_y, 0),
              note="scratch: the shipped SED fine-tuned by the separator's L1 through the own query "
                   "(docs/measurements/sed_finetuned_jointly-2026-12-06)")
(out / "sep" / steps_backbone.CARD).write_text(json.dumps(record, indent=2))
print(json.dumps({k: record[k] for k in record if k.startswith(("val_", "separator_", "sed_", "bytes"))}),
      time.monotonic() - started, flush=True)
