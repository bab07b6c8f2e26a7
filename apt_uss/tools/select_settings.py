"""Choose the demo profile's tuning settings on validation data only: ``make select-settings``.

The default dataset (``--dataset``: synthetic, ``seed`` 0, or debian_sounds, the real recordings), 5 shots per class drawn with selection seed 0, and
``validation_clips`` held-out clips per class from the training folds (never the test folds,
which this tool does not read). ``--selection-seeds 0,100,101`` scores every candidate on several such
draws (each its own shots, held-out clips and mixtures) by the mean of their pooled medians: one draw of 40
mixtures moves a score by a dB or more (docs/selection.md). Every candidate (lr x loss x crop rule, constant lr) tunes the same initial
prompts on the same mixtures and is scored by the pooled median SDR of its prompts on the
validation mixtures; the best one is then tuned for each other candidate epoch count, and the best of those
under each other lr schedule (``--other-lr-schedules``, default cosine). The result
is a table (CSV and JSON) and one line per candidate; the numbers reported elsewhere come from
other seeds (``make sweep``: seeds 1 and up).

``python -m apt_uss.tools.select_settings --out dist/select_settings [--dataset debian_sounds] [--n-classes 10]
[--lrs 3e-3,1e-2,3e-2] [--other-lr-schedules cosine] [--selection-seeds 0,100,101]``
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import time
from pathlib import Path

import pandas as pd

from apt_uss.data.clips import ClipStore
from apt_uss.errors import AptUssError
from apt_uss.evaluation.evaluate import evaluate_prompts
from apt_uss.logs import configure_logging
from apt_uss.method.prompts import load_prompts, save_prompts
from apt_uss.method.tuning import tune_prompts
from apt_uss.models.backbone import BackboneSpec
from apt_uss.params.spec import LR_SCHEDULES, defaults
from apt_uss.steps.data import (
    MIXING,
    VALIDATION_MIXTURES,
    fetch_dataset_step,
    simulate_mixtures_step,
    split_folds_step,
)
from apt_uss.steps.pipeline import init_prompts_step

log = logging.getLogger("apt_uss.select_settings")
DEMO = defaults("demo")
SELECTION_SEED = 0  # the shot draw and mixtures of the choice; reports use seeds 1 and up


def validation_median_sdr(dataset_dir: Path, mixtures_dir: Path, prompts_path: Path, mix_rule: str,
                          separator=None) -> float:
    """Pooled median SDR of a prompt table's estimates on the validation mixtures (through ``separator``, by
    default the demo backbone's)."""
    mixtures = pd.read_csv(mixtures_dir / VALIDATION_MIXTURES, keep_default_na=False)
    clips = ClipStore(str(dataset_dir))
    clips.preload(pd.concat([mixtures["target_file"], mixtures["interferer_file"]]))
    prompts, targets, _ = load_prompts(prompts_path)
    separator = separator if separator is not None else BackboneSpec.of(DEMO["backbone"]).load().separator
    table, _ = evaluate_prompts(separator, mixtures, clips, prompts, targets, mix_rule)
    return float(table["sdr"].median())


def prepare_validation(out: Path, dataset: str = "synthetic", n_classes: int = DEMO["n_classes"], n_shot: str = "5",
                       validation_clips: int = 4, selection_seed: int = SELECTION_SEED,
                       dataset_root: Path | None = None,
                       backbone: BackboneSpec | None = None) -> tuple[Path, Path, Path, dict]:
    """The dataset (under ``dataset_root``, default ``out``), the split (``n_shot`` shots with the selection seed,
    ``validation_clips`` held out of the training folds) and the initial prompts under ``out``, and the demo
    profile's tuning settings: (dataset folder, splits file, prompts file, settings). The dataset is made once and
    reused; the split and the prompts are made again on every call (seconds), so they always match the dataset and
    the SED of ``backbone`` (default: the demo profile's, the installed weights)."""
    out.mkdir(parents=True, exist_ok=True)
    data = (dataset_root or out) / (f"dataset-{n_classes}-classes" if dataset == "synthetic" else f"dataset-{dataset}")
    if not (data / "dataset.json").is_file():
        fetch_dataset_step(dataset, str(data), n_classes=n_classes, seed=DEMO["seed"])
    splits = out / f"splits-{n_shot}shot-{validation_clips}val.csv"
    split_folds_step(str(data), str(splits), n_shot=n_shot, shot_seed=selection_seed,
                     validation_clips=validation_clips)
    prompts = out / "prompts_initial.npz"
    init_prompts_step(str(data), str(splits), str(prompts), str(out / "embeddings.npz"),
                      backbone=backbone if backbone is not None else DEMO["backbone"])
    settings = {k: DEMO[k] for k in ("lr", "loss_function", "crop_rule", "epochs", "lr_schedule")}
    return data, splits, prompts, settings


def validation_mixtures_dir(out: Path, data: Path, splits: Path, selection_seed: int = SELECTION_SEED) -> Path:
    """A mixtures folder whose validation mixtures the baseline is scored on (the same in every folder of a draw)."""
    return _mixtures(out, data, splits, "random", 1, selection_seed)


def validation_scores(out: Path, backbone: BackboneSpec, selection_seed: int = SELECTION_SEED,
                      dataset: str = "debian_sounds", dataset_root: Path | None = None) -> dict:
    """Baseline and APT (the demo profile's settings) pooled median SDR of ``backbone`` on one validation draw: its
    own SED embeds the shots (the initial prompts), its separator is tuned and scored, as the pipeline would run it."""
    data, splits, prompts, settings = prepare_validation(out, dataset=dataset, selection_seed=selection_seed,
                                                         dataset_root=dataset_root, backbone=backbone)
    separator = backbone.load().separator
    base = validation_median_sdr(data, validation_mixtures_dir(out, data, splits, selection_seed), prompts,
                                 DEMO["mix_rule"], separator=separator)
    mixtures = _mixtures(out, data, splits, settings["crop_rule"], settings["epochs"], selection_seed)
    tuned = out / "tuned.npz"
    _tune(data, mixtures, prompts, tuned, settings["lr"], settings["loss_function"], separator=separator,
          lr_schedule=settings["lr_schedule"])
    apt = validation_median_sdr(data, mixtures, tuned, DEMO["mix_rule"], separator=separator)
    return {"validation_sdr_baseline": base, "validation_sdr_apt": apt}


def check_other_lr_schedules(other_lr_schedules: tuple[str, ...]) -> None:
    """Refuse schedules the comparison cannot tune: unknown ones, and ``constant`` (the grid's own)."""
    unknown = [s for s in other_lr_schedules if s not in LR_SCHEDULES or s == "constant"]
    if unknown:
        raise AptUssError(f"other lr schedule(s) {', '.join(map(repr, unknown))}: the grid tunes at a constant lr; "
                          f"choose from {', '.join(s for s in LR_SCHEDULES if s != 'constant')}")


def check_selection_seeds(selection_seeds: tuple[int, ...]) -> None:
    """At least one draw; seeds are whole numbers from 0 up, each once."""
    if not selection_seeds:
        raise AptUssError("selection_seeds is empty: give at least one seed (0 is the selection's own draw)")
    bad = [s for s in selection_seeds if s < 0]
    if bad or len(set(selection_seeds)) < len(selection_seeds):
        raise AptUssError(f"selection seeds {list(selection_seeds)}: give distinct whole numbers from 0 up")


def select_settings(out: Path, n_classes: int, n_shot: str, validation_clips: int, lrs: list[float],
                    losses: list[str], crop_rules: list[str], epochs: int, epoch_choices: list[int],
                    dataset: str = "synthetic", other_lr_schedules: tuple[str, ...] = ("cosine",),
                    selection_seeds: tuple[int, ...] = (SELECTION_SEED,)) -> pd.DataFrame:
    """The grid at a constant lr, then its best at each other epoch count, then the best of those under each of
    ``other_lr_schedules``; writes the table and ``chosen.json`` under ``out`` and returns the table.

    Each of ``selection_seeds`` is one validation draw (its own shots, held-out clips and mixtures; with several,
    each under ``out/draw-seed<seed>``); a candidate's ``validation_sdr_median`` is the mean over the draws of
    its pooled median SDR, and each draw's own is a column ``validation_sdr_median_seed<seed>``."""
    check_other_lr_schedules(other_lr_schedules)
    check_selection_seeds(selection_seeds)
    draws = []
    for seed in selection_seeds:
        folder = out if len(selection_seeds) == 1 else out / f"draw-seed{seed}"
        data, splits, prompts, _ = prepare_validation(folder, dataset, n_classes, n_shot, validation_clips, seed,
                                                      dataset_root=out)  # one dataset copy for every draw
        draws.append((seed, folder, data, splits, prompts))

    def scores(per_draw: dict[int, float]) -> dict:
        row = {"validation_sdr_median": sum(per_draw.values()) / len(per_draw)}
        if len(per_draw) > 1:
            row.update({f"validation_sdr_median_seed{seed}": v for seed, v in per_draw.items()})
        return row

    rows = [{"setting": "baseline (initial prompts)", **scores({seed: validation_median_sdr(
        data, validation_mixtures_dir(folder, data, splits, seed), prompts, DEMO["mix_rule"])
        for seed, folder, data, splits, prompts in draws})}]
    log.info("select: baseline %.2f dB on the validation mixtures", rows[0]["validation_sdr_median"])

    def trial(lr: float, loss: str, crop: str, n_epochs: int, schedule: str = "constant") -> dict:
        started = time.monotonic()
        name = f"lr{lr:g}-{loss}-{crop}-e{n_epochs}" + ("" if schedule == "constant" else f"-{schedule}")
        per_draw = {}
        for seed, folder, data, splits, prompts in draws:
            mixtures = _mixtures(folder, data, splits, crop, n_epochs, seed)
            (folder / "trials").mkdir(exist_ok=True)
            tuned = folder / "trials" / f"{name}.npz"
            _tune(data, mixtures, prompts, tuned, lr, loss, lr_schedule=schedule)
            per_draw[seed] = validation_median_sdr(data, mixtures, tuned, DEMO["mix_rule"])
        row = {"setting": name, "lr": lr, "loss_function": loss, "crop_rule": crop, "epochs": n_epochs,
               "lr_schedule": schedule, **scores(per_draw), "seconds": round(time.monotonic() - started, 1)}
        log.info("select: %s -> %.2f dB on the validation mixtures (%d draw(s), %.0f s)", name,
                 row["validation_sdr_median"], len(draws), row["seconds"])
        return row

    grid = [trial(lr, loss, crop, epochs) for lr, loss, crop in itertools.product(lrs, losses, crop_rules)]
    best = max(grid, key=lambda r: r["validation_sdr_median"])
    by_epochs = [trial(best["lr"], best["loss_function"], best["crop_rule"], e) for e in epoch_choices if e != epochs]
    best = max([best] + by_epochs, key=lambda r: r["validation_sdr_median"])
    by_schedule = [trial(best["lr"], best["loss_function"], best["crop_rule"], best["epochs"], s)
                   for s in other_lr_schedules]
    table = pd.DataFrame(rows + grid + by_epochs + by_schedule)
    chosen = max(grid + by_epochs + by_schedule, key=lambda r: r["validation_sdr_median"])
    table["chosen"] = table["setting"] == chosen["setting"]
    table.to_csv(out / "select_settings.csv", index=False)
    (out / "chosen.json").write_text(json.dumps({**{k: chosen[k] for k in ("lr", "loss_function", "crop_rule", "epochs",
                                                                            "lr_schedule", "validation_sdr_median")},
                                                 "selection_seeds": list(selection_seeds)}, indent=2))
    return table


def _tune(data: Path, mixtures_dir: Path, prompts_path: Path, out_prompts: Path, lr: float, loss: str,
          separator=None, lr_schedule: str = "constant") -> None:
    """Tune without scoring the validation mixtures after every epoch (the choice scores them once, at the end)."""
    info = json.loads((mixtures_dir / MIXING).read_text())
    train = pd.read_csv(mixtures_dir / "train_mixtures.csv", keep_default_na=False)
    clips = ClipStore(str(data))
    clips.preload(pd.concat([train["target_file"], train["interferer_file"]]))
    initial, targets, names = load_prompts(prompts_path)
    separator = separator if separator is not None else BackboneSpec.of(DEMO["backbone"]).load().separator
    tuned, _ = tune_prompts(separator, initial, targets, train, clips, info["mix_rule"], info["crop_samples"],
                            lr=lr, batch_size=DEMO["batch_size"], loss_function=loss, lr_schedule=lr_schedule)
    save_prompts(out_prompts, tuned, targets, names)


def _mixtures(out: Path, data: Path, splits: Path, crop: str, n_epochs: int, mix_seed: int = SELECTION_SEED) -> Path:
    folder = out / "mixtures" / f"{data.name}-{splits.stem}-{crop}-e{n_epochs}-seed{mix_seed}"  # each set-up its own
    if not (folder / "mixing.json").is_file():
        simulate_mixtures_step(str(data), str(splits), str(folder), epochs=n_epochs, crop_rule=crop,
                               mix_seed=mix_seed)
    return folder


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    parser = argparse.ArgumentParser(prog="python -m apt_uss.tools.select_settings", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="dist/select_settings")
    parser.add_argument("--dataset", choices=("synthetic", "debian_sounds"), default="synthetic",
                        help="synthetic (seed 0) or debian_sounds (the real recordings `make corpus` builds)")
    parser.add_argument("--n-classes", type=int, default=DEMO["n_classes"], help="synthetic only")
    parser.add_argument("--n-shot", default="5")
    parser.add_argument("--validation-clips", type=int, default=4)
    parser.add_argument("--lrs", type=_floats, default=[3e-3, 1e-2, 3e-2])
    parser.add_argument("--losses", default="l1,snr")
    parser.add_argument("--crop-rules", default="random,loud")
    parser.add_argument("--epochs", type=int, default=DEMO["epochs"])
    # At most the demo's 20: more epochs would push the default run past its few minutes on 2 CPU cores.
    parser.add_argument("--epoch-choices", default="10,20")
    others = [s for s in LR_SCHEDULES if s != "constant"]
    parser.add_argument("--other-lr-schedules", default=",".join(others),
                        help=f"the best candidate (tuned at a constant lr) is also tuned with each of these "
                             f"({', '.join(others)}; empty: none)")
    parser.add_argument("--selection-seeds", default=str(SELECTION_SEED),
                        help="validation draws to score each candidate on, by the mean of their pooled medians "
                             "(such as 0,100,101; default: the selection's own draw, 0)")
    args = parser.parse_args(argv)
    try:
        selection_seeds = tuple(int(v) for v in args.selection_seeds.split(",") if v.strip())
    except ValueError:
        parser.error(f"--selection-seeds {args.selection_seeds!r}: give comma-separated whole numbers")
    try:
        check_selection_seeds(selection_seeds)
    except AptUssError as exc:
        parser.error(f"--selection-seeds {args.selection_seeds!r}: {exc}")
    schedules = tuple(s for s in args.other_lr_schedules.split(",") if s)
    try:  # before any work, as a usage error
        check_other_lr_schedules(schedules)
    except AptUssError as exc:
        parser.error(f"--other-lr-schedules {args.other_lr_schedules!r}: {exc}")
    table = select_settings(Path(args.out), args.n_classes, args.n_shot, args.validation_clips, args.lrs,
                            args.losses.split(","), args.crop_rules.split(","), args.epochs,
                            [int(e) for e in args.epoch_choices.split(",")], dataset=args.dataset,
                            other_lr_schedules=schedules, selection_seeds=selection_seeds)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
