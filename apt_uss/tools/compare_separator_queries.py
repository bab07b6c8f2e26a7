"""Which recipe should the demo backbone be pretrained with (the separator's query and lr, the SED's steps, the
seen classes)? Compared on validation data only.

``python -m apt_uss.tools.compare_separator_queries --out dist/separator_queries [--steps 1000] [--lrs 2e-3,5e-3]``

Each candidate query (``apt_uss.models.pretrain.SEPARATOR_QUERIES``: the target crop's own SED embedding,
the ZS-ASP recipe of the shipped weights; the embedding of another recording of the target's class; or the mean
embedding of 1 to all of its class's other training clips, an n-shot prompt)
trains a separator from the same seeded start, on the same mixtures (``make backbone``'s seen classes and
recipe, fewer steps), under the shipped demo SED. Each is then scored as the pipeline would use it (the SED it
was trained under embeds the shots), on the
validation split of the real-recordings dataset (``debian_sounds``: 5 shots drawn with selection seed 0,
4 held-out training-fold clips a class; the test folds are never read): the pooled median SDR of the
baseline (initial, mean-embedding prompts) and of APT (the demo profile's tuning). ``--lrs`` trains each
query at each of several separator learning rates (default: the recipe's). The shipped separator
(trained longer, with the own-crop query) is scored the same way for reference. ``--sed-steps``
trains the SED too, at each of several step counts (the recipe's batch and lr, from the same seeded start; its
accuracy on the seen classes' held-out clips is recorded), and each separator under each of those SEDs
instead of the shipped one; ``--seen-classes`` trains both on fewer of the corpus's seen classes; ``--seed``
repeats a comparison with other initialisations and training draws. Writes ``separator_queries.csv`` and ``.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from apt_uss.errors import AptUssError
from apt_uss.logs import configure_logging
from apt_uss.models import pretrain
from apt_uss.models.backbone import BackboneSpec, load_backbone, seeded_backbone
from apt_uss.models.checkpoints import export_backbone
from apt_uss.models.config import get_config
from apt_uss.models.device import use_available_cores
from apt_uss.params import backbone_recipe as recipe
from apt_uss.steps import backbone as backbone_steps
from apt_uss.tools import select_settings as selection

log = logging.getLogger("apt_uss.compare_separator_queries")


def trained_separator(query: str, steps: int, seed: int = 0, compiled: bool = recipe.SEPARATOR_COMPILED,
                      lr: float = recipe.SEPARATOR_LR, sed: torch.nn.Module | None = None,
                      seen_classes: int = recipe.SEEN_CLASSES):
    """A demo separator trained with ``query`` at ``lr`` under ``sed`` (default: the shipped SED), on the recipe's
    corpus (its first ``seen_classes`` classes) and batch."""
    train_x, train_y, _, _ = _seen_corpus(seed, seen_classes)
    model = seeded_backbone(get_config("demo"), seed)
    model.sed.load_state_dict((sed if sed is not None else load_backbone("demo").sed).state_dict())
    losses = pretrain.train_separator(model.separator, model.sed, train_x, train_y, steps, recipe.SEPARATOR_BATCH_SIZE,
                                      lr, seed, compiled=compiled, query=query,
                                      clip_embeddings=backbone_steps.query_clip_embeddings(model.sed, train_x, query))
    return model.separator.eval(), float(sum(losses[-50:]) / len(losses[-50:]))


def trained_sed(steps: int, seed: int = 0, seen_classes: int = recipe.SEEN_CLASSES) -> tuple[torch.nn.Module, float]:
    """A demo SED trained for ``steps`` on the recipe's corpus (its first ``seen_classes`` classes), batch and lr, and
    its accuracy on the held-out clips of those classes."""
    train_x, train_y, val_x, val_y = _seen_corpus(seed, seen_classes)
    sed = seeded_backbone(get_config("demo"), seed).sed
    pretrain.train_sed(sed, train_x, train_y, steps, recipe.SED_BATCH_SIZE, recipe.SED_LR, seed)
    return sed.eval(), pretrain.sed_accuracy(sed, val_x, val_y, seed)


def _seen_corpus(seed: int, seen_classes: int = recipe.SEEN_CLASSES):
    return backbone_steps._corpus(recipe.CORPUS, seen_classes, recipe.CLIPS_PER_CLASS, recipe.VAL_CLIPS, seed)


def candidate_backbone(sed: torch.nn.Module, separator: torch.nn.Module, path: Path) -> BackboneSpec:
    """A trained candidate as a backbone the pipeline's steps can load: its SED and separator in one checkpoint at
    ``path`` (the shipped checkpoint's layout), pinned by sha256."""
    export_backbone(sed, separator, path)
    return BackboneSpec(name="demo",
                        separator_checkpoint_uri=f"{path}#sha256={hashlib.sha256(path.read_bytes()).hexdigest()}")


def check_seen_classes(seen_classes: tuple[int, ...], sed_steps: tuple[int, ...]) -> None:
    """Another seen-class count than the recipe's needs an SED trained for it: the shipped one has its head."""
    if not sed_steps and set(seen_classes) != {recipe.SEEN_CLASSES}:
        raise AptUssError(f"seen_classes {list(seen_classes)}: the shipped SED was trained on {recipe.SEEN_CLASSES} "
                          "classes; another count needs an SED trained for it (give sed_steps)")


def compare(out: Path, queries: list[str], steps: int, seed: int = 0, compiled: bool = True,
            lrs: tuple[float, ...] = (recipe.SEPARATOR_LR,), sed_steps: tuple[int, ...] = (),
            seen_classes: tuple[int, ...] = (recipe.SEEN_CLASSES,)) -> pd.DataFrame:
    """The shipped separator, then one trained separator per (seen classes, SED, query, lr), each scored on the
    validation data. ``sed_steps``: train an SED for each of these step counts (none: the shipped SED, which needs
    the recipe's seen classes); ``seen_classes``: the backbone trains on the corpus's first this many classes."""
    check_seen_classes(seen_classes, sed_steps)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    started = time.monotonic()
    shipped_sed = load_backbone("demo").sed
    rows.append({"separator": f"shipped ({recipe.SEPARATOR_STEPS} steps, query own)", "sed": "shipped",
                 "seen_classes": recipe.SEEN_CLASSES, "query": "own", "steps": recipe.SEPARATOR_STEPS,
                 "lr": recipe.SEPARATOR_LR,
                 **selection.validation_scores(out, BackboneSpec(name="demo"))})
    log.info("queries: %s", rows[-1])
    for n_classes, n_sed in [(c, n) for c in seen_classes for n in sed_steps or (None,)]:
        sed, sed_info = None, {"sed": "shipped", "seen_classes": n_classes}
        if n_sed is not None:
            t0 = time.monotonic()
            sed, accuracy = trained_sed(n_sed, seed, n_classes)
            sed_info = {"sed": f"{n_sed} steps", "seen_classes": n_classes, "sed_val_accuracy": accuracy,
                        "sed_seconds": round(time.monotonic() - t0, 1)}
            log.info("SED of %d steps on %d classes: held-out accuracy %.3f (%.0f s so far)", n_sed, n_classes,
                     accuracy, time.monotonic() - started)
        for query, lr in [(q, lr) for q in queries for lr in lrs]:
            t0 = time.monotonic()
            separator, final_l1 = trained_separator(query, steps, seed, compiled, lr, sed, n_classes)
            trained_s = time.monotonic() - t0
            name = (f"{steps} steps, query {query}, lr {lr:g}" + (f", SED {n_sed} steps" if n_sed else "")
                    + (f", {n_classes} seen classes" if n_classes != recipe.SEEN_CLASSES else ""))
            candidate = candidate_backbone(sed if sed is not None else shipped_sed, separator,
                                           out / "candidates" / f"candidate{len(rows)}.pt")
            rows.append({"separator": name, **sed_info, "query": query, "steps": steps, "lr": lr,
                         "final_l1": final_l1, **selection.validation_scores(out, candidate),
                         "checkpoint": candidate.separator_checkpoint_uri.split("#")[0],
                         "train_seconds": round(trained_s, 1),
                         "score_seconds": round(time.monotonic() - t0 - trained_s, 1)})
            log.info("queries: %s (%.0f s so far)", rows[-1], time.monotonic() - started)
    table = pd.DataFrame(rows)
    table.to_csv(out / "separator_queries.csv", index=False)
    (out / "separator_queries.json").write_text(json.dumps(rows, indent=2))
    return table


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    parser = argparse.ArgumentParser(prog="python -m apt_uss.tools.compare_separator_queries", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="dist/separator_queries")
    parser.add_argument("--queries", default=",".join(pretrain.SEPARATOR_QUERIES))
    parser.add_argument("--steps", type=int, default=1000, help="separator steps of each candidate")
    parser.add_argument("--eager", action="store_true", help="train without torch.compile")
    parser.add_argument("--lrs", default=f"{recipe.SEPARATOR_LR:g}",
                        help="comma-separated separator learning rates, each trained with each query")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the trained parts' initialisation and training draws (the validation data "
                             "stay those of selection seed 0)")
    parser.add_argument("--sed-steps", default="",
                        help="comma-separated SED step counts: train an SED for each (default: the shipped SED)")
    parser.add_argument("--seen-classes", default=str(recipe.SEEN_CLASSES),
                        help="comma-separated counts of seen classes the backbone trains on (needs --sed-steps "
                             "unless the recipe's)")
    args = parser.parse_args(argv)
    use_available_cores()
    torch.manual_seed(0)
    try:
        lrs = tuple(float(x) for x in args.lrs.split(",") if x.strip())
    except ValueError:
        parser.error(f"--lrs {args.lrs!r}: give comma-separated numbers, such as 2e-3,5e-3")
    if not lrs or any(not lr > 0 for lr in lrs):
        parser.error(f"--lrs {args.lrs!r}: every learning rate must be positive")
    try:
        sed_steps = tuple(int(x) for x in args.sed_steps.split(",") if x.strip())
    except ValueError:
        parser.error(f"--sed-steps {args.sed_steps!r}: give comma-separated whole numbers, such as 750,1500,3000")
    if any(n < 1 for n in sed_steps):
        parser.error(f"--sed-steps {args.sed_steps!r}: every step count must be at least 1")
    try:
        seen_classes = tuple(int(x) for x in args.seen_classes.split(",") if x.strip())
    except ValueError:
        parser.error(f"--seen-classes {args.seen_classes!r}: give comma-separated whole numbers, such as 64,128")
    if not seen_classes or any(not 2 <= n <= recipe.SEEN_CLASSES for n in seen_classes):
        parser.error(f"--seen-classes {args.seen_classes!r}: each count must be 2 to {recipe.SEEN_CLASSES}")
    try:
        check_seen_classes(seen_classes, sed_steps)
    except AptUssError as exc:
        parser.error(f"--seen-classes {args.seen_classes!r}: {exc}")
    if args.steps < 1:
        parser.error(f"--steps {args.steps}: each separator trains at least 1 step")
    if not [q for q in args.queries.split(",") if q.strip()]:
        parser.error(f"--queries {args.queries!r}: name at least one query ({', '.join(pretrain.SEPARATOR_QUERIES)})")
    if args.seed < 0:
        parser.error(f"--seed {args.seed}: seeds are whole numbers from 0 up")
    unknown = [q for q in args.queries.split(",") if q and q not in pretrain.SEPARATOR_QUERIES]
    if unknown:
        parser.error(f"--queries: {', '.join(unknown)} unknown; known are {', '.join(pretrain.SEPARATOR_QUERIES)}")
    table = compare(Path(args.out), [q for q in args.queries.split(",") if q], args.steps, seed=args.seed,
                    compiled=not args.eager, lrs=lrs, sed_steps=sed_steps, seen_classes=seen_classes)
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
