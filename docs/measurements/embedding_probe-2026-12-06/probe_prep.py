import sys, logging
from pathlib import Path
logging.basicConfig(level=logging.WARNING)
from apt_uss.tools.select_settings import prepare_validation
root = Path("/tmp/val")
for s in (0, 100, 101):
    data, splits, prompts, _ = prepare_validation(root / f"seed{s}", dataset="debian_sounds", selection_seed=s, dataset_root=root)
    print(s, data, splits, prompts)
