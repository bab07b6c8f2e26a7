# Kept as run for the wider separator (wider_train.log), when it lived in docs/measurements/wider_separator-2026-12-06/
# (the usage lines below still name that folder); train_bf16_separator.py generalises it (channels and steps as
# arguments) and ran the 8,000-step separator.
"""Scratch (validation-only experiment): the shipped SED, a separator 1.5x as wide as demo's (U-Net channels
12..192 instead of 8..128, 2.2x the parameters) trained by the recipe (4,000 steps of 8, lr 2e-3, own query, L1),
its forward under bfloat16 autocast so a step costs about what demo's float32 step does on this CPU (AVX-512 BF16):
does the separator's capacity move the unseen classes' baseline?

Run from the repository root (it reads apt_uss/models/weights/demo.json), corpus built (`make corpus`):
  /usr/bin/time -v .venv/bin/python docs/measurements/wider_separator-2026-12-06/train_wider_separator.py OUT
writes OUT/sed (the shipped SED) and OUT/sep/backbone.pt with its card backbone.json. Scored with
  .venv/bin/python docs/measurements/wider_separator-2026-12-06/train_wider_separator.py --validate VAL OUT/sep/backbone.pt
which runs separator_loss-2026-12-06/validate_backbones.py with the wider config in place of demo's.
"""
import dataclasses
import json
import runpy
import sys
import time
from pathlib import Path

import torch

from apt_uss.logs import configure_logging
from apt_uss.models import config, pretrain

WIDER = (12, 24, 48, 96, 192)
demo = config.BACKBONE_CONFIGS["demo"]
wider = dataclasses.replace(demo, separator=dataclasses.replace(demo.separator, channels=WIDER))

if sys.argv[1] == "--validate":  # score the wider weights: the shipped SED (embedded) and the wider separator
    config.BACKBONE_CONFIGS["demo"] = wider
    sys.argv = ["validate_backbones.py", sys.argv[2], "0,100,101", f"wider={sys.argv[3]}"]
    runpy.run_path("docs/measurements/separator_loss-2026-12-06/validate_backbones.py", run_name="__main__")
    sys.exit()

from apt_uss.models.backbone import BackboneSpec  # noqa: E402
from apt_uss.steps import backbone as steps_backbone  # noqa: E402

configure_logging()
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
sed_dir = out / "sed"
sed_dir.mkdir(exist_ok=True)
bb = BackboneSpec(name="demo").load()  # the shipped weights, before the config is swapped
torch.save({k: v.cpu() for k, v in bb.sed.state_dict().items()}, sed_dir / steps_backbone.SED_CHECKPOINT)
card = json.loads(Path("apt_uss/models/weights/demo.json").read_text())
(sed_dir / steps_backbone.SED_CARD).write_text(json.dumps({k: card[k] for k in card if k.startswith("sed_")}))
config.BACKBONE_CONFIGS["demo"] = wider


class BFloat16Forward(torch.nn.Module):
    """The separator's forward under CPU bfloat16 autocast, its waveform returned in float32."""

    def __init__(self, separator):
        super().__init__()
        self.separator = separator

    def forward(self, wav, condition):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = self.separator(wav, condition)
        return {"wav": out["wav"].float()}


compile_fp32 = pretrain.compiled_for_training
pretrain.compiled_for_training = lambda module: compile_fp32(BFloat16Forward(module))
started = time.monotonic()
record = steps_backbone.pretrain_separator_step(str(sed_dir), str(out / "sep"))
print(json.dumps({k: record[k] for k in record if k.startswith(("val_", "separator_", "seen_", "bytes"))}),
      time.monotonic() - started, flush=True)
