"""How far the unseen classes' initial prompts lie from what the demo separator trained on: for each validation draw's
initial prompts (VAL_ROOT/shipped/seed{0,100,101}/prompts_initial.npz, made from folds 1-3), the cosine to the nearest
seen class's mean training-query embedding, and the norms of those training queries (the shipped SED's embeddings of
480 training target crops drawn as the recipe draws them: `training_mixtures`, stream `pretrain_separator`, seed 0).

python prompt_distances.py VAL_ROOT     (run from the repository root, corpus built)
"""
import sys
from pathlib import Path

import numpy as np
import torch

from apt_uss.data.streams import stream
from apt_uss.method.prompts import load_prompts
from apt_uss.models.backbone import BackboneSpec
from apt_uss.models.pretrain import CROP_SECONDS, training_mixtures
from apt_uss.steps.backbone import CLIPS_PER_CLASS, CORPUS, SEEN_CLASSES, VAL_CLIPS, _corpus

root = Path(sys.argv[1])
sed = BackboneSpec(name="demo").load().sed.eval()
train_x, train_y, _, _ = _corpus(CORPUS, SEEN_CLASSES, CLIPS_PER_CLASS, VAL_CLIPS, 0, "")
rng = stream("pretrain_separator", 0)
queries, labels = [], []
with torch.no_grad():
    for _ in range(60):
        _, targets, classes = training_mixtures(train_x, train_y, rng, 8, int(CROP_SECONDS * 32000))
        queries.append(sed(torch.from_numpy(targets))["latent_output"].numpy())
        labels.append(classes)
queries, labels = np.concatenate(queries), np.concatenate(labels)
present = np.unique(labels)
means = np.stack([queries[labels == c].mean(0) for c in present])
print(f"{len(queries)} training queries of {len(present)} seen classes; norm quantiles 0/5/50/95/100%:",
      np.quantile(np.linalg.norm(queries, axis=1), [0, .05, .5, .95, 1]).round(2))


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


for seed in (0, 100, 101):
    prompts, _, names = load_prompts(root / "shipped" / f"seed{seed}" / "prompts_initial.npz")
    nearest = (unit(prompts) @ unit(means).T).max(axis=1)
    print(f"draw {seed}: cosine to the nearest seen class's mean query, norm:",
          ", ".join(f"{n} {c:.2f} {np.linalg.norm(p):.2f}" for n, c, p in zip(names, nearest, prompts)))
