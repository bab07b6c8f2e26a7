"""Scratch (validation-only proxy): fine-tune the shipped demo separator for STEPS steps at LR (cosine decay to 5%,
the recipe's schedule), batch 8, own query, L1, compiled, training seed SEED, with Gaussian noise of standard deviation
SIGMA added to every training query (the frozen SED's embedding of the target crop; torch generator seeded 1000+SEED).
SIGMA 0 is the control: the same fine-tune without noise, the same mixture draws. Paired against the control, a lever's
effect is read without the 0.3 dB between two trainings from scratch (separator_seed-2026-12-06). The shipped SED is
untouched, so the shipped weights' validation prompts serve (the diagnosis reads them: tag `shipped`).

Run from the repository root, corpus built:
  .venv/bin/python docs/measurements/query_noise_finetune-2026-12-06/finetune_with_query_noise.py OUT.pt 600 SIGMA 5e-4 7
then
  .venv/bin/python docs/measurements/separator_diagnosis-2026-12-06/diagnose_queries.py VAL shipped OUT.pt rows.csv
  .venv/bin/python docs/measurements/separator_generalisation-2026-12-06/seen_classes_like_unseen.py OUT.pt
(the diagnosis's `tuned` column holds prompts tuned for the shipped separator, not for the fine-tuned one: ignore it)
"""
import sys
import time

import torch

from apt_uss.logs import configure_logging
from apt_uss.models import pretrain
from apt_uss.models.backbone import BackboneSpec
from apt_uss.models.checkpoints import export_backbone
from apt_uss.steps.backbone import CLIPS_PER_CLASS, CORPUS, SEEN_CLASSES, VAL_CLIPS, _corpus, separation_check

configure_logging()
out, steps, sigma, lr, seed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])

class NoisyQuery(torch.nn.Module):
    def __init__(self, sed, sigma, seed):
        super().__init__(); self.sed, self.sigma = sed, sigma
        self.g = torch.Generator().manual_seed(1000 + seed)
    def forward(self, x):
        lat = self.sed(x)["latent_output"]
        if self.sigma > 0:
            lat = lat + self.sigma * torch.randn(lat.shape, generator=self.g)
        return {"latent_output": lat}

torch.set_num_threads(2)
bb = BackboneSpec(name="demo").load()
tx, ty, vx, vy = _corpus(CORPUS, SEEN_CLASSES, CLIPS_PER_CLASS, VAL_CLIPS, 0, "")
t = time.monotonic()
losses = pretrain.train_separator(bb.separator, NoisyQuery(bb.sed, sigma, seed), tx, ty, steps, 8, lr, seed,
                                  compiled=True)
print("train s", time.monotonic() - t, "final l1", sum(losses[-50:]) / 50, flush=True)
bb.eval()
print(separation_check(bb, tx, ty, vx, vy, 0), flush=True)
export_backbone(bb.sed, bb.separator, out)
