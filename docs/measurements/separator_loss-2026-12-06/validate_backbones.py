"""Baseline and APT (the demo profile's settings) of several demo backbones on the real recordings' validation draws.

python validate_backbones.py OUT SEEDS TAG=CHECKPOINT [TAG=CHECKPOINT ...]   (CHECKPOINT "" : the shipped weights)

Validation data only, as `select_settings --selection-seeds` draws it: per seed, 5 shots and 4 held-out clips a class
from folds 1-3, its own mixtures; folds 4-5 are never read. Each backbone's own SED embeds the shots (the initial
prompts), its separator is tuned and scored (`apt_uss.tools.select_settings.validation_scores`)."""
import json
import sys
from pathlib import Path

import numpy as np

from apt_uss.logs import configure_logging
from apt_uss.models.backbone import BackboneSpec
from apt_uss.tools.select_settings import validation_scores

configure_logging()
out_root, seeds = Path(sys.argv[1]), [int(s) for s in sys.argv[2].split(",")]
rows = []
for tag, checkpoint in (a.split("=", 1) for a in sys.argv[3:]):
    for seed in seeds:
        backbone = BackboneSpec(name="demo", separator_checkpoint_uri=checkpoint)
        scores = validation_scores(out_root / tag / f"seed{seed}", backbone, seed, dataset_root=out_root)
        rows.append({"backbone": tag, "seed": seed, "baseline": round(scores["validation_sdr_baseline"], 3),
                     "apt": round(scores["validation_sdr_apt"], 3)})
        print(json.dumps(rows[-1]), flush=True)
(out_root / "rows.json").write_text(json.dumps(rows, indent=1))
for tag in dict.fromkeys(r["backbone"] for r in rows):
    mine = [r for r in rows if r["backbone"] == tag]
    print(f"{tag}: baseline mean {np.mean([r['baseline'] for r in mine]):.2f} dB, "
          f"APT mean {np.mean([r['apt'] for r in mine]):.2f} dB over seeds {seeds}")
