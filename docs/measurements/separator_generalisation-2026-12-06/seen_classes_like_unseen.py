"""The demo separator on held-out clips of its seen classes, mixed and queried as the unseen classes' validation mixtures
are: whole 5-s clips, the interferer energy-matched to the target, the query the mean of the class's training clips'
embeddings (each the mean over its loud 2-s segments, `embed_clips`, as the pipeline makes an initial prompt) or the
test clip's own embedding. The cards' held-out check uses 2-s loud crops instead, so its figures do not compare with
the unseen classes' directly; these do (the unseen classes' pooled medians: ../separator_diagnosis-2026-12-06).

python seen_classes_like_unseen.py [CHECKPOINT]     (none: the shipped weights; run from the repository root,
                                                      corpus built)
150 mixtures of the 256 held-out clips (2 of each of the 128 seen classes), drawn with numpy seed 7.
"""
import sys

import numpy as np
import pandas as pd

from apt_uss.data.mixtures import mix
from apt_uss.evaluation.evaluate import separate
from apt_uss.evaluation.metrics import bss_sdr
from apt_uss.method.prompts import embed_clips
from apt_uss.models.backbone import BackboneSpec
from apt_uss.models.frozen_separator import frozen_separator
from apt_uss.steps.backbone import CLIPS_PER_CLASS, CORPUS, SEEN_CLASSES, VAL_CLIPS, _corpus

backbone = BackboneSpec(name="demo", separator_checkpoint_uri=sys.argv[1] if len(sys.argv) > 1 else "").load()
separator, sed = frozen_separator(backbone.separator), backbone.sed.eval()
train_x, train_y, val_x, val_y = _corpus(CORPUS, SEEN_CLASSES, CLIPS_PER_CLASS, VAL_CLIPS, 0, "")
train_emb = embed_clips(sed, ((str(i), c) for i, c in enumerate(train_x)), len(train_x), 32000)
train_emb = np.stack([train_emb[str(i)] for i in range(len(train_x))])
class_mean = np.stack([train_emb[train_y == c].mean(0) for c in range(SEEN_CLASSES)]).astype(np.float32)
own = embed_clips(sed, ((str(i), c) for i, c in enumerate(val_x)), len(val_x), 32000)
rng = np.random.default_rng(7)
rows = []
for _ in range(150):
    i, j = rng.integers(len(val_x)), rng.integers(len(val_x))
    while val_y[j] == val_y[i]:
        j = rng.integers(len(val_x))
    s, m = val_x[i], mix(val_x[i], val_x[j], "energy_match")
    e = separate(separator, np.stack([m, m]), np.stack([class_mean[val_y[i]], own[str(i)].astype(np.float32)]), "cpu")
    rows.append({"class_mean": bss_sdr(s, e[0]), "own": bss_sdr(s, e[1]), "half_mixture": bss_sdr(s, 0.5 * m)})
print(f"seen classes' held-out 5-s clips, {len(rows)} mixtures, pooled median SDR (dB):",
      pd.DataFrame(rows).median().round(2).to_dict())
