"""Scratch (validation-only experiment): the whole demo backbone, SED and separator, trained on the 128 recorded seen
classes of debian_sounds_seen plus the 338 classes of recorded sounds of other kinds from three Debian sample packages
(sonic-pi-samples, lmms-common, hydrogen-data; the extra corpus of ../sample_packs_seen-2026-12-06, built by its
`extra_corpus`, the same clips). That run gave the new sounds to the separator only, under the shipped SED, which
had heard instruments and drum pieces alone; here the SED learns them too, so its embedding is trained on sounds of
many kinds, as HTS-AT's on AudioSet. Everything else is the recipe (`apt_uss/params/backbone_recipe.py`): SED 3,000
steps of 16, AdamW 1e-3, cross-entropy over all 466 classes; separator 4,000 steps of 8, Adam 2e-3 + cosine, own
query, L1, compiled, float32; seed 0.

The SED trains with a 466-class head; the demo config's head has 128 outputs, so the written SED keeps the head's
first 128 (the recorded classes', whose labels come first; the head is not used for queries, which are the latent
embedding before it). Its held-out accuracy is measured over all 466 classes, on the recorded classes' held-out clips.

  mkdir -p DEBS && cd DEBS && apt-get download sonic-pi-samples=3.2.2~repack-8 lmms-common=1.2.2+dfsg1-6 \
      hydrogen-data=1.2.0~beta1+dfsg-1
Run from the repository root, corpus built (`make corpus`):
  /usr/bin/time -v .venv/bin/python docs/measurements/sed_sample_packs-2026-12-06/train_backbone_with_sample_packs.py DEBS OUT
writes OUT/sed (the SED and its card) and OUT/sep/backbone.pt with its card backbone.json. Then:
  .venv/bin/python docs/measurements/separator_loss-2026-12-06/validate_backbones.py VAL 0,100,101 sedpacks=OUT/sep/backbone.pt
      (validation_rows.json is VAL/rows.json)
  .venv/bin/python docs/measurements/separator_diagnosis-2026-12-06/diagnose_queries.py VAL sedpacks OUT/sep/backbone.pt rows_sedpacks.csv
"""
import dataclasses
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

from apt_uss.logs import configure_logging
from apt_uss.models import pretrain
from apt_uss.models.backbone import seeded_backbone
from apt_uss.models.config import get_config
from apt_uss.params.backbone_recipe import SED_BATCH_SIZE, SED_LR, SED_STEPS
from apt_uss.steps import backbone as steps_backbone

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location(
    "sample_packs", HERE.parent / "sample_packs_seen-2026-12-06" / "train_separator_with_sample_packs.py")
sample_packs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sample_packs)
HEAD = ("tscam_conv.weight", "tscam_conv.bias", "head.weight", "head.bias")  # the class-sized entries


def demo_sed_state(wide_state: dict, n_recorded: int) -> dict:
    """The wide SED's weights with its head cut to the recorded classes' ``n_recorded`` outputs (the demo config's)."""
    state = dict(wide_state)
    for key in [k for k in state if k.endswith(HEAD)]:
        w = state[key]
        state[key] = w[:n_recorded, :n_recorded] if key.endswith("head.weight") else w[:n_recorded]
    return state


def main() -> None:
    configure_logging()
    debs, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    ex, ey, rows, sources = sample_packs.extra_corpus(debs, out / "unpacked")
    (out / "extra_sources.json").write_text(json.dumps(sources, indent=1))
    print("extra corpus", ex.shape, "classes", len(rows), flush=True)

    recipe_corpus = steps_backbone._corpus
    rx, ry, val_x, val_y = recipe_corpus(steps_backbone.CORPUS, steps_backbone.SEEN_CLASSES,
                                         steps_backbone.CLIPS_PER_CLASS, steps_backbone.VAL_CLIPS, 0, "")
    n_recorded = steps_backbone.SEEN_CLASSES
    train_x, train_y = np.concatenate([rx, ex]), np.concatenate([ry, ey + n_recorded])
    n_all = n_recorded + len(rows)
    print("training clips", train_x.shape, "recorded", len(rx), "extra", len(ex), "classes", n_all, flush=True)

    demo = get_config("demo")
    wide = dataclasses.replace(demo, sed=dataclasses.replace(demo.sed, n_classes=n_all))
    started = time.monotonic()
    sed = seeded_backbone(wide, 0).sed
    losses = pretrain.train_sed(sed, train_x, train_y, SED_STEPS, SED_BATCH_SIZE, SED_LR, 0)
    accuracy = pretrain.sed_accuracy(sed, val_x, val_y, 0)
    print(f"SED: held-out accuracy {accuracy:.4f} on the recorded classes' held-out clips, over {n_all} classes; "
          f"{time.monotonic() - started:.0f} s", flush=True)
    narrow = seeded_backbone(demo, 0).sed
    narrow.load_state_dict(demo_sed_state(sed.state_dict(), n_recorded), strict=True)
    info = {"sed_steps": SED_STEPS, "sed_batch_size": SED_BATCH_SIZE, "sed_lr": SED_LR,
            "sed_val_accuracy": accuracy, "sed_classes": n_all, "sed_final_ce": float(np.mean(losses[-50:])),
            "sed_seconds": time.monotonic() - started}
    steps_backbone._write_sed_folder(str(out / "sed"), narrow, info)

    def joined(corpus, n_classes, clips_per_class, val_clips, seed, corpus_uri=""):
        return train_x, train_y, val_x, val_y

    steps_backbone._corpus = joined
    t = time.monotonic()
    rec = steps_backbone.pretrain_separator_step(str(out / "sed"), str(out / "sep"))
    print(json.dumps({k: rec[k] for k in rec if k.startswith(("val_", "separator_", "sed_"))}), time.monotonic() - t,
          flush=True)


if __name__ == "__main__":
    main()
