"""The embedding probe's cosine nearest-class-mean test (../embedding_probe-2026-12-06) for one backbone: each of the
validation draws' 40 held-out clips (folds 1-3) against that draw's initial prompts (the class means of the 5 shots,
embedded by the backbone's own SED), as ../sed_finetuned_jointly-2026-12-06/nearest_class_mean.py does for two.

  .venv/bin/python docs/measurements/wide_sed-2026-12-07/with_wide_sed.py \
      docs/measurements/wide_sed-2026-12-07/nearest_class_mean.py VAL TAG CHECKPOINT

VAL is the OUT of ../separator_loss-2026-12-06/validate_backbones.py, already run with TAG=CHECKPOINT on seeds 0, 100,
101 (CHECKPOINT "" : the shipped weights, without the wrapper).
"""
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from apt_uss.data.clips import ClipStore
from apt_uss.method.prompts import embed_clips, load_prompts
from apt_uss.models.backbone import BackboneSpec

root, tag, checkpoint = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
store = ClipStore(str(root / "dataset-debian_sounds"))
sed = BackboneSpec(name="demo", separator_checkpoint_uri=checkpoint).load().sed.eval()
accuracies = []
for seed in (0, 100, 101):
    initial, targets, _ = load_prompts(root / tag / f"seed{seed}" / "prompts_initial.npz")
    held_out = pd.read_csv(root / tag / f"seed{seed}" / "splits-5shot-4val.csv")
    held_out = held_out[held_out.split == "validation"]
    files = list(held_out.filename)
    embedded = embed_clips(sed, ((f, store.segment(f, 0, None)) for f in files), len(files), 32000)
    means = initial / np.linalg.norm(initial, axis=1, keepdims=True)
    hits = [targets[int(np.argmax(means @ (embedded[f] / np.linalg.norm(embedded[f]))))] == t
            for f, t in zip(files, held_out.target)]
    accuracies.append(float(np.mean(hits)))
print(f"{tag}: nearest class mean (cosine) per draw {[round(a, 3) for a in accuracies]}, "
      f"mean {np.mean(accuracies):.3f}, {len(files)} clips a draw")
