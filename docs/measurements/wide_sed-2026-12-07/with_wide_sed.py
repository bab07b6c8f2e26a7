"""Scratch (validation-only experiment): run a module or script with the `demo` config's SED made wider.

The shipped demo SED is HTS-AT with embed_dim 16 and four stages, so its latent (the query, and the prompts APT tunes)
is 128-d: as wide as the 128 seen classes it is trained to tell apart. This runs the same code with embed_dim 32
(heads 2/4/8/16, so each attention head stays 16 wide; a 256-d latent); nothing else of the config changes.

  .venv/bin/python docs/measurements/wide_sed-2026-12-07/with_wide_sed.py -m apt_uss pretrain-sed --out OUT/sed
  .venv/bin/python docs/measurements/wide_sed-2026-12-07/with_wide_sed.py -m apt_uss pretrain-separator \
      --sed-dir OUT/sed --out OUT/sep
  .venv/bin/python docs/measurements/wide_sed-2026-12-07/with_wide_sed.py \
      docs/measurements/separator_loss-2026-12-06/validate_backbones.py VAL 0,100,101 widesed=OUT/sep/backbone.pt
  .venv/bin/python docs/measurements/wide_sed-2026-12-07/with_wide_sed.py \
      docs/measurements/separator_diagnosis-2026-12-06/diagnose_queries.py VAL widesed OUT/sep/backbone.pt rows.csv

The first argument is `-m MODULE` or a script path; the rest are its arguments. Every config lookup by name sees the
patched `demo`, in this process only (the steps run here keep one process)."""
import dataclasses
import runpy
import sys

from apt_uss.models import config

EMBED_DIM, HEADS = 32, (2, 4, 8, 16)

demo = config.BACKBONE_CONFIGS["demo"]
config.BACKBONE_CONFIGS["demo"] = dataclasses.replace(
    demo, sed=dataclasses.replace(demo.sed, embed_dim=EMBED_DIM, heads=HEADS))
print(f"demo SED patched: embed_dim {EMBED_DIM}, heads {HEADS}, latent {config.BACKBONE_CONFIGS['demo'].embed_dim}",
      flush=True)

if sys.argv[1] == "-m":
    module, sys.argv = sys.argv[2], [sys.argv[2], *sys.argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
else:
    script, sys.argv = sys.argv[1], sys.argv[1:]
    runpy.run_path(script, run_name="__main__")
