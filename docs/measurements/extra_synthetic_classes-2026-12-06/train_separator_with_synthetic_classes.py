"""Scratch (validation-only experiment): the shipped SED, a separator trained by the recipe on the real seen classes
plus the 128 synthetic seen classes (labels 128..255), same steps/batch/lr/query/loss."""
import json, sys, time
from pathlib import Path
import numpy as np, torch
from apt_uss.logs import configure_logging
from apt_uss.models.backbone import BackboneSpec
from apt_uss.models import pretrain
from apt_uss.steps import backbone as steps_backbone
from apt_uss.data import debian_sounds

configure_logging()
out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
sed_dir = out / "sed"; sed_dir.mkdir(exist_ok=True)
bb = BackboneSpec(name="demo").load()
torch.save({k: v.cpu() for k, v in bb.sed.state_dict().items()}, sed_dir / steps_backbone.SED_CHECKPOINT)
card = json.loads(Path("apt_uss/models/weights/demo.json").read_text())
(sed_dir / steps_backbone.SED_CARD).write_text(json.dumps({k: card[k] for k in card if k.startswith("sed_")}))

def union_corpus(corpus, n_classes, clips_per_class, val_clips, seed, corpus_uri=""):
    rx, ry = debian_sounds.load_seen_clips(n_classes, clips_per_class, corpus_uri)
    sx, sy = pretrain.seen_corpus(128, clips_per_class, seed)
    n = min(rx.shape[1], sx.shape[1])
    clips = np.concatenate([rx[:, :n], sx[:, :n]]); labels = np.concatenate([ry, sy + n_classes])
    held = (np.arange(len(clips)) % clips_per_class) >= clips_per_class - val_clips
    print("union corpus", clips.shape, rx.shape, sx.shape, flush=True)
    return clips[~held], labels[~held], clips[held], labels[held]

steps_backbone._corpus = union_corpus
t = time.monotonic()
rec = steps_backbone.pretrain_separator_step(str(sed_dir), str(out / "sep"))
print(json.dumps({k: rec[k] for k in rec if k.startswith(("val_", "separator_"))}), time.monotonic() - t, flush=True)
