"""Does the fine-tuned SED still tell the unseen classes apart? The embedding probe's cosine nearest-class-mean test
(../embedding_probe-2026-12-06) on the validation draws that validate_backbones.py wrote: each draw's 40 validation
clips (folds 1-3) against its initial prompts (the class means of the 5 shots), for the shipped SED and the
fine-tuned one.

  .venv/bin/python docs/measurements/sed_finetuned_jointly-2026-12-06/nearest_class_mean.py VAL CHECKPOINT [TAG]

VAL is the OUT of validate_backbones.py, already run with `shipped=` and `TAG=CHECKPOINT` on seeds 0, 100, 101
(TAG `joint` when not given, as this run used it).
"""
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from apt_uss.data.clips import ClipStore
from apt_uss.method.prompts import embed_clips, load_prompts
from apt_uss.models.backbone import BackboneSpec

root, checkpoint = Path(sys.argv[1]), sys.argv[2]
other = sys.argv[3] if len(sys.argv) > 3 else "joint"
store = ClipStore(str(root / "dataset-debian_sounds"))
for tag, ckpt in (("shipped", ""), (other, checkpoint)):
    sed = BackboneSpec(name="demo", separator_checkpoint_uri=ckpt).load().sed.eval()
    accuracies = []
    for seed in (0, 100, 101):
        initial, targets, _ = load_prompts(root / tag / f"seed{seed}" / "prompts_initial.npz")
        split = pd.read_csv(root / other / f"seed{seed}" / "splits-5shot-4val.csv")  # the same draw for every tag
        held_out = split[split.split == "validation"]
        files = list(held_out.filename)
        embedded = embed_clips(sed, ((f, store.segment(f, 0, None)) for f in files), len(files), 32000)
        means = initial / np.linalg.norm(initial, axis=1, keepdims=True)
        hits = [targets[int(np.argmax(means @ (embedded[f] / np.linalg.norm(embedded[f]))))] == t
                for f, t in zip(files, held_out.target)]
        accuracies.append(float(np.mean(hits)))
    print(f"{tag}: nearest class mean (cosine) per draw {[round(a, 3) for a in accuracies]}, "
          f"mean {np.mean(accuracies):.3f}, {len(files)} clips a draw")
