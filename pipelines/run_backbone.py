"""``python -m pipelines.run_backbone [--separator-steps N ...]``: pretrain the demo backbone locally.

Runs the pretraining pipeline with KFP's local runner, then installs the checkpoint and its
card (config, sha256, the command, held-out figures) as the package's ``demo`` weights.
"""

from __future__ import annotations

import inspect
import json
import shlex
import shutil
import sys
import time
from pathlib import Path

from apt_uss.errors import AptUssError
from apt_uss.io.paths import state_dir
from apt_uss.logs import configure_logging, executor_input_folded
from apt_uss.models.choice import PACKAGED_WEIGHTS, WEIGHTS_DIR
from apt_uss.steps.backbone import CARD, CHECKPOINT, check_backbone_recipe
from pipelines.backbone_pipeline import backbone_pipeline
from pipelines.local_cli import FlagParser, add_show_executor_input_flag, add_signature_flags, report_failure

MAX_CHECKPOINT_BYTES = 20 * 10**6
RECIPE_CHECKED = inspect.signature(check_backbone_recipe).parameters


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    argv = sys.argv[1:] if argv is None else argv
    parser = FlagParser(prog="python -m pipelines.run_backbone", description=__doc__)
    add_signature_flags(parser, backbone_pipeline)
    parser.add_argument("--install-to", default=str(WEIGHTS_DIR), help="folder for the checkpoint and its card")
    add_show_executor_input_flag(parser)
    args = vars(parser.parse_args(argv))
    show_executor_input = args.pop("show_executor_input")
    try:  # before the runner starts, as the pipeline's own first task does on a cluster
        check_backbone_recipe(**{k: v for k, v in args.items() if k in RECIPE_CHECKED})
    except AptUssError as exc:
        parser.error(str(exc))
    install_to = Path(args.pop("install_to"))
    from kfp import local

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(state_dir() / "kfp-outputs"))
    started = time.monotonic()
    try:
        with executor_input_folded(not show_executor_input):
            out = Path(backbone_pipeline(**args).output.path)
    except (AptUssError, RuntimeError) as exc:  # RuntimeError: kfp.local's failed task
        return report_failure(exc, "pretraining")
    if not (out / CHECKPOINT).is_file():
        print("error: the pretraining pipeline produced no checkpoint", file=sys.stderr)
        return 1
    size = (out / CHECKPOINT).stat().st_size
    if size > MAX_CHECKPOINT_BYTES:  # it is committed to the repository
        print(f"error: the checkpoint is {size / 1e6:.1f} MB, over the {MAX_CHECKPOINT_BYTES / 1e6:.0f} MB limit for "
              f"shipped weights; it stays at {out}", file=sys.stderr)
        return 1
    name = PACKAGED_WEIGHTS.get(args["config"], f"{args['config']}.pt")
    install_to.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / CHECKPOINT, install_to / name)
    card = json.loads((out / CARD).read_text())
    card["command"] = "python -m pipelines.run_backbone " + shlex.join(argv) if argv else "make backbone"
    card["pipeline_seconds"] = time.monotonic() - started
    (install_to / name).with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card, indent=2))
    print(f"installed {install_to / name} ({card['bytes'] / 2**20:.1f} MiB, sha256 {card['sha256']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
