"""Go/no-go: how well do 5-shot mean embeddings pick the class of held-out validation clips (folds 1-3 only)?

Run after probe_prep.py (the validation draws of selection seeds 0, 100, 101 under /tmp/val), with this folder in
/tmp/mnport and musicnn's wheel unzipped under /tmp/probe/mn. Each clip's embedding is the mean over its loud 2-s
segments (the pipeline's `embed_clips` rule): the shipped SED's latent, and musicnn's (resampled to 16 kHz)."""
import sys
sys.path.insert(0, "/tmp/mnport")
import numpy as np, pandas as pd, torch, torchaudio
from pathlib import Path
from apt_uss.data.audio import read_audio, to_model_format, SAMPLE_RATE
from apt_uss.method.prompts import clip_segments, SEGMENT_SECONDS
from apt_uss.models.backbone import BackboneSpec
from tf_bundle import read_checkpoint
from musicnn_torch import Musicnn, load_tf

torch.set_grad_enabled(False)
data = Path("/tmp/val/dataset-debian_sounds")
sed = BackboneSpec(name="demo").load().sed.eval()
mn = load_tf(Musicnn(), read_checkpoint("/tmp/probe/mn/musicnn/MTT_musicnn/")).eval()
seg = int(SEGMENT_SECONDS * SAMPLE_RATE)
cache = {}
def embed(fn):
    if fn not in cache:
        a, sr = read_audio(data / "audio" / fn)
        a = to_model_format(a, sr)
        segs = torch.from_numpy(clip_segments(a, seg))
        e = {"sed": sed(segs)["latent_output"].mean(0).numpy()}
        w16 = torchaudio.functional.resample(segs, SAMPLE_RATE, 16000)
        f = mn.features(mn.logmel(w16))
        for k in ("penultimate", "pooled", "mean_pool"):
            e["mn_" + k] = f[k].mean(0).numpy()
        e["mn_logits"] = torch.sigmoid(f["logits"]).mean(0).numpy()
        cache[fn] = e
    return cache[fn]

def accuracy(train, val, key, metric):
    cls = sorted(train.target.unique())
    C = np.stack([np.mean([embed(f)[key] for f in train[train.target == c].filename], 0) for c in cls])
    X = np.stack([embed(f)[key] for f in val.filename])
    if metric == "cos":
        Cn = C / np.linalg.norm(C, axis=1, keepdims=True); Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
        pred = np.argmax(Xn @ Cn.T, 1)
    else:
        pred = np.argmin(((X[:, None] - C[None]) ** 2).sum(-1), 1)
    return float(np.mean(np.array(cls)[pred] == val.target.to_numpy()))

rows = []
for s in (0, 100, 101):
    d = pd.read_csv(f"/tmp/val/seed{s}/splits-5shot-4val.csv")
    tr, va = d[d.split == "train"], d[d.split == "validation"]
    for key in ("sed", "mn_penultimate", "mn_pooled", "mn_mean_pool", "mn_logits"):
        for m in ("cos", "l2"):
            rows.append(dict(seed=s, embedding=key, metric=m, acc=accuracy(tr, va, key, m)))
r = pd.DataFrame(rows)
print(r.pivot_table(index=["embedding", "metric"], columns="seed", values="acc").assign(mean=lambda t: t.mean(1)).round(3))
