"""Scratch (validation-only experiment): does a query made from more of the frozen SED than its last layer move the
unseen classes' baseline? The shipped SED, unchanged, but its ``latent_output`` replaced by a multi-scale embedding:
the mean over tokens of each of the first three stages' outputs, each layer-normalised without weights (32, 64 and
128 values for demo), followed by the SED's own latent (128): 352 values. The demo SED is a classifier of the 128
seen classes, so its last layer is shaped to tell those classes apart; its earlier stages carry more generic
spectral features, which may describe a class it never heard in terms the separator can follow. A separator is
trained by the recipe (4,000 steps, batch 8, lr 2e-3 with its cosine decay, own query, L1, compiled, float32) on
these queries, and the validation prompts are made from the same embedding (the initial prompts are 352-d).

Run from the repository root (it reads apt_uss/models/weights/demo.json), corpus built (`make corpus`):
  /usr/bin/time -v .venv/bin/python docs/measurements/multiscale_query-2026-12-06/train_separator_multiscale_query.py OUT
writes OUT/sed (the shipped SED) and OUT/sep/backbone.pt with its card backbone.json. Scored with
  .venv/bin/python docs/measurements/multiscale_query-2026-12-06/train_separator_multiscale_query.py --validate VAL CHECKPOINT TAG
which runs separator_loss-2026-12-06/validate_backbones.py (VAL/rows.json) under the same embedding, and
  .venv/bin/python docs/measurements/multiscale_query-2026-12-06/train_separator_multiscale_query.py --diagnose VAL CHECKPOINT TAG CSV
which runs separator_diagnosis-2026-12-06/diagnose_queries.py likewise (after --validate).
"""
import json
import runpy
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from apt_uss.logs import configure_logging
from apt_uss.models import config, htsat

single_scale_forward = htsat.HTSAT.forward


def multiscale_forward(self, wav, mixup_lambda=None, infer_mode=True):
    stage_outputs = []
    hooks = [layer.register_forward_hook(lambda module, args, output: stage_outputs.append(output))
             for layer in self.layers[:-1]]
    try:
        out = single_scale_forward(self, wav, mixup_lambda, infer_mode)
    finally:
        for hook in hooks:
            hook.remove()
    pooled = [F.layer_norm(tokens, tokens.shape[-1:]).mean(dim=1) for tokens in stage_outputs]
    return {"latent_output": torch.cat(pooled + [out["latent_output"]], dim=1),
            "clipwise_output": out["clipwise_output"]}


def multiscale_dim(sed: config.SEDConfig) -> int:
    stages = len(sed.depths)  # stage i's output has embed_dim * 2**(i+1) channels (after its downsampling)
    return sum(sed.embed_dim * 2 ** (i + 1) for i in range(stages - 1)) + sed.embed_dim * 2 ** (stages - 1)


htsat.HTSAT.forward = multiscale_forward

if len(sys.argv) > 1 and sys.argv[1] in ("--validate", "--diagnose"):
    config.SEDConfig.latent_dim = property(multiscale_dim)
    mode, val, checkpoint, tag = sys.argv[1:5]
    if mode == "--validate":
        sys.argv = ["validate_backbones.py", val, "0,100,101", f"{tag}={checkpoint}"]
        runpy.run_path("docs/measurements/separator_loss-2026-12-06/validate_backbones.py", run_name="__main__")
    else:
        sys.argv = ["diagnose_queries.py", val, tag, checkpoint, sys.argv[5]]
        runpy.run_path("docs/measurements/separator_diagnosis-2026-12-06/diagnose_queries.py", run_name="__main__")
    sys.exit()

from apt_uss.models.backbone import BackboneSpec  # noqa: E402
from apt_uss.steps import backbone as steps_backbone  # noqa: E402

configure_logging()
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
sed_dir = out / "sed"
sed_dir.mkdir(exist_ok=True)
bb = BackboneSpec(name="demo").load()  # the shipped weights, before the query width changes
config.SEDConfig.latent_dim = property(multiscale_dim)
print("multi-scale query width", config.BACKBONE_CONFIGS["demo"].embed_dim,
      tuple(bb.sed(torch.zeros(1, 64000))["latent_output"].shape), flush=True)
torch.save({k: v.cpu() for k, v in bb.sed.state_dict().items()}, sed_dir / steps_backbone.SED_CHECKPOINT)
card = json.loads(Path("apt_uss/models/weights/demo.json").read_text())
(sed_dir / steps_backbone.SED_CARD).write_text(json.dumps({k: card[k] for k in card if k.startswith("sed_")}))
started = time.monotonic()
smoke = {"steps": int(sys.argv[2]), "compiled": False} if len(sys.argv) > 2 else {}  # OUT STEPS: a quick eager check
record = steps_backbone.pretrain_separator_step(str(sed_dir), str(out / "sep"), **smoke)
print(json.dumps({k: record[k] for k in record if k.startswith(("val_", "separator_", "seen_", "bytes"))}),
      time.monotonic() - started, flush=True)
