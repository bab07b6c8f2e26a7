"""Scratch (validation-only experiments): the shipped SED and a separator trained by the recipe (batch 8, lr 2e-3
with its cosine decay, own query, L1, compiled) with its forward under bfloat16 autocast, which on this CPU (AVX-512
BF16) makes the separator's forward and backward about 1.5x faster than float32 (a whole step, with its mixtures and
SED queries, about 1.2x). Two questions: does the separator's capacity (U-Net channels 12..192 instead of demo's
8..128, 2.2x the parameters, 4,000 steps; that run used train_wider_separator.py, which this script generalises) or
its training length (demo's width, 8,000 steps) move the unseen classes' baseline?

Run from the repository root (it reads apt_uss/models/weights/demo.json), corpus built (`make corpus`):
  /usr/bin/time -v .venv/bin/python docs/measurements/bf16_separator-2026-12-06/train_bf16_separator.py OUT CHANNELS STEPS
e.g. CHANNELS 12,24,48,96,192 and STEPS 4000, or 8,16,32,64,128 and 8000; it writes OUT/sed (the shipped SED) and
OUT/sep/backbone.pt with its card backbone.json. Scored with
  .venv/bin/python docs/measurements/bf16_separator-2026-12-06/train_bf16_separator.py --validate VAL CHECKPOINT CHANNELS TAG
which runs separator_loss-2026-12-06/validate_backbones.py (VAL/rows.json) with those channels in place of demo's, and
  .venv/bin/python docs/measurements/bf16_separator-2026-12-06/train_bf16_separator.py --diagnose VAL CHECKPOINT CHANNELS TAG CSV
which runs separator_diagnosis-2026-12-06/diagnose_queries.py likewise (after --validate).
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

demo = config.BACKBONE_CONFIGS["demo"]


def demo_with(channels: str) -> config.BackboneConfig:
    return dataclasses.replace(demo, separator=dataclasses.replace(
        demo.separator, channels=tuple(int(c) for c in channels.split(","))))


if sys.argv[1] in ("--validate", "--diagnose"):  # the shipped SED (embedded in CHECKPOINT) and the separator
    mode, val, checkpoint, channels, tag = sys.argv[1:6]
    config.BACKBONE_CONFIGS["demo"] = demo_with(channels)
    if mode == "--validate":
        sys.argv = ["validate_backbones.py", val, "0,100,101", f"{tag}={checkpoint}"]
        runpy.run_path("docs/measurements/separator_loss-2026-12-06/validate_backbones.py", run_name="__main__")
    else:
        sys.argv = ["diagnose_queries.py", val, tag, checkpoint, sys.argv[6]]
        runpy.run_path("docs/measurements/separator_diagnosis-2026-12-06/diagnose_queries.py", run_name="__main__")
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
config.BACKBONE_CONFIGS["demo"] = demo_with(sys.argv[2])


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
record = steps_backbone.pretrain_separator_step(str(sed_dir), str(out / "sep"), steps=int(sys.argv[3]))
print(json.dumps({k: record[k] for k in record if k.startswith(("val_", "separator_", "seen_", "bytes"))}),
      time.monotonic() - started, flush=True)
