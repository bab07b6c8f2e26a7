"""The demo backbone's pretraining steps, as plain functions over file paths (see ``pretrain.py``)."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from apt_uss.data import debian_sounds
from apt_uss.data.audio import SAMPLE_RATE
from apt_uss.data.streams import stream
from apt_uss.errors import AptUssError
from apt_uss.evaluation.metrics import bss_sdr, is_silent
from apt_uss.io.atomic import atomic_path
from apt_uss.method.losses import separation_loss
from apt_uss.method.prompts import embed_clips
from apt_uss.models import pretrain
from apt_uss.models.backbone import Backbone, load_backbone, seeded_backbone
from apt_uss.models.checkpoints import export_backbone, load_strict
from apt_uss.models.choice import PACKAGED_WEIGHTS, WEIGHTS_DIR
from apt_uss.models.config import get_config
from apt_uss.models.device import cpu_description, use_available_cores
from apt_uss.params.backbone_recipe import (
    CLIPS_PER_CLASS,
    CORPORA,
    CORPUS,
    SED_BATCH_SIZE,
    SED_LR,
    SED_STEPS,
    SEEN_CLASSES,
    SEPARATOR_AUGMENT,
    SEPARATOR_BATCH_SIZE,
    SEPARATOR_COMPILED,
    SEPARATOR_LOSS,
    SEPARATOR_LR,
    SEPARATOR_QUERY,
    SEPARATOR_STEPS,
    VAL_CLIPS,
)
from apt_uss.params.checks import check_positive
from apt_uss.params.spec import LOSS_FUNCTIONS

log = logging.getLogger(__name__)

CHECKPOINT = "backbone.pt"
CARD = "backbone.json"
SED_CHECKPOINT = "sed.pt"
SED_CARD = "sed.json"

# The recipe's defaults (CORPUS, SEEN_CLASSES, SED_STEPS, ...) live in apt_uss.params.backbone_recipe.


def _check_replaceable(out: str, own_files: tuple[str, ...], name: str) -> None:
    """``out`` is new, empty, or holds only the files this step writes there: the step replaces the whole folder, so
    anything else in it would be lost. The error names ``name`` and the first other files."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise AptUssError(f"{name} {out} is a file, not a folder: give a new or empty folder")
    others = sorted(p.name for p in folder.iterdir() if p.name not in own_files) if folder.is_dir() else []
    if others:
        raise AptUssError(f"{name} {out} holds other files ({', '.join(others[:3])}"
                          f"{', ...' if len(others) > 3 else ''}), which writing it would delete: "
                          f"give a new or empty folder")


def _check_held_out_split(n_classes: int, clips_per_class: int, val_clips: int) -> None:
    check_positive("n_classes", n_classes, integer=True)
    check_positive("clips_per_class", clips_per_class, integer=True)
    if not 0 < val_clips < clips_per_class:
        raise AptUssError(f"val_clips={val_clips} is not valid: use 1 to clips_per_class - 1 ({clips_per_class - 1})")


def _check_sed_heads(config: str, n_classes: int) -> None:
    heads = get_config(config).sed.n_classes
    if n_classes > heads:
        raise AptUssError(f"n_classes={n_classes} is more than the {heads} outputs of the {config!r} SED head")


def check_backbone_recipe(config: str = "demo", corpus: str = CORPUS, n_classes: int = SEEN_CLASSES,
                          clips_per_class: int = CLIPS_PER_CLASS, val_clips: int = VAL_CLIPS,
                          sed_steps: int = SED_STEPS, sed_batch_size: int = SED_BATCH_SIZE, sed_lr: float = SED_LR,
                          separator_steps: int = SEPARATOR_STEPS,
                          separator_batch_size: int = SEPARATOR_BATCH_SIZE, separator_lr: float = SEPARATOR_LR,
                          separator_query: str = SEPARATOR_QUERY, separator_loss: str = SEPARATOR_LOSS,
                          separator_augment: str = SEPARATOR_AUGMENT) -> None:
    """Every pretraining parameter that can be wrong without reading the corpus, checked at once: the
    pretraining pipeline runs this first, so a bad value (typed in the Kubeflow UI, say) stops the run
    before minutes of SED training rather than after. One error line names the parameter."""
    if corpus not in CORPORA:
        raise AptUssError(f"corpus={corpus!r} is unknown: use {' or '.join(CORPORA)}")
    _check_held_out_split(n_classes, clips_per_class, val_clips)
    for name, value in (("sed_steps", sed_steps), ("sed_batch_size", sed_batch_size),
                        ("separator_steps", separator_steps), ("separator_batch_size", separator_batch_size)):
        check_positive(name, value, integer=True)
    check_positive("sed_lr", sed_lr)
    check_positive("separator_lr", separator_lr)
    _check_sed_heads(config, n_classes)
    _check_separator_choices(separator_query, separator_loss, separator_augment)


def _check_separator_choices(separator_query: str, separator_loss: str, separator_augment: str) -> None:
    """The separator's query, loss and augment: known names, and a combination the training can run."""
    pretrain.check_separator_choices(separator_query, separator_augment, "separator_query", "separator_augment")
    if separator_loss not in LOSS_FUNCTIONS:
        raise AptUssError(f"separator_loss {separator_loss!r} is unknown: known are {', '.join(LOSS_FUNCTIONS)}")


def _corpus(corpus: str, n_classes: int, clips_per_class: int, val_clips: int, seed: int, corpus_uri: str = ""):
    """Training and held-out validation clips of the seen classes (the last ``val_clips`` of each class)."""
    _check_held_out_split(n_classes, clips_per_class, val_clips)
    if corpus == "synthetic":
        clips, labels = pretrain.seen_corpus(n_classes, clips_per_class, seed)
    elif corpus == "debian_sounds":
        clips, labels = debian_sounds.load_seen_clips(n_classes, clips_per_class, corpus_uri)
    else:
        raise AptUssError(f"corpus={corpus!r} is unknown: use {' or '.join(CORPORA)}")
    held_out = (np.arange(len(clips)) % clips_per_class) >= clips_per_class - val_clips
    return clips[~held_out], labels[~held_out], clips[held_out], labels[held_out]


def _write_sed_folder(out_sed: str, sed: torch.nn.Module, info: dict) -> None:
    """The SED folder ``pretrain_separator_step`` reads: ``sed.pt`` (the state dict on CPU) and its card ``info``."""
    with atomic_path(out_sed) as tmp:
        tmp.mkdir()
        torch.save({k: v.cpu() for k, v in sed.state_dict().items()}, tmp / SED_CHECKPOINT)
        (tmp / SED_CARD).write_text(json.dumps(info, indent=2))


def pretrain_sed_step(out_sed: str, config: str = "demo", corpus: str = CORPUS, corpus_uri: str = "",
                      n_classes: int = SEEN_CLASSES,
                      clips_per_class: int = CLIPS_PER_CLASS, val_clips: int = VAL_CLIPS, seed: int = 0,
                      steps: int = SED_STEPS, batch_size: int = SED_BATCH_SIZE, lr: float = SED_LR) -> dict:
    _check_replaceable(out_sed, (SED_CHECKPOINT, SED_CARD), "out_sed")  # before minutes of training
    use_available_cores()
    started = time.monotonic()
    _check_sed_heads(config, n_classes)
    train_x, train_y, val_x, val_y = _corpus(corpus, n_classes, clips_per_class, val_clips, seed, corpus_uri)
    sed = seeded_backbone(get_config(config), seed).sed
    losses = pretrain.train_sed(sed, train_x, train_y, steps, batch_size, lr, seed)
    accuracy = pretrain.sed_accuracy(sed, val_x, val_y, seed)
    info = {"sed_steps": steps, "sed_batch_size": batch_size, "sed_lr": lr, "sed_val_accuracy": accuracy,
            "sed_final_ce": float(np.mean(losses[-50:])), "sed_seconds": time.monotonic() - started}
    _write_sed_folder(out_sed, sed, info)
    log.info("SED: held-out accuracy %.3f on %d seen classes (chance %.3f)", accuracy, n_classes, 1 / n_classes)
    return info


def shipped_sed_step(out_sed: str, config: str = "demo") -> dict:
    """Write the SED of ``config``'s shipped weights as ``pretrain_sed_step`` writes its output (``sed.pt`` and a card
    of the shipped card's ``sed_*`` figures), so ``pretrain_separator_step`` can train a separator under it without
    training an SED again (10-13 minutes of the recipe on 2 cores)."""
    if config not in PACKAGED_WEIGHTS:
        raise AptUssError(f"config={config!r} ships no weights: shipped are {', '.join(sorted(PACKAGED_WEIGHTS))}")
    _check_replaceable(out_sed, (SED_CHECKPOINT, SED_CARD), "out_sed")
    sed = load_backbone(config).sed  # a clear error if the weights or their card are missing
    card = json.loads((WEIGHTS_DIR / PACKAGED_WEIGHTS[config]).with_suffix(".json").read_text())
    # sed_from_sha256: the sha256 of the shipped checkpoint the SED was taken from (it holds the separator too)
    info = {**{k: v for k, v in card.items() if k.startswith("sed_")}, "sed_from": f"shipped {config} weights",
            "sed_from_sha256": card["sha256"]}
    _write_sed_folder(out_sed, sed, info)
    log.info("SED of the shipped %s weights (sha256 %s...) written to %s", config, card["sha256"][:12], out_sed)
    return info


def query_clip_embeddings(sed: torch.nn.Module, clips: np.ndarray, query: str) -> np.ndarray | None:
    """The per-clip SED embeddings the "class_mean" separator query averages (as the pipeline embeds its shots:
    ``embed_clips``); None for the other queries, which embed crops as they train."""
    if query != "class_mean":
        return None
    sed.eval()
    embedded = embed_clips(sed, ((str(i), clip) for i, clip in enumerate(clips)), len(clips), SAMPLE_RATE)
    return np.stack([embedded[str(i)] for i in range(len(clips))])


@torch.inference_mode()
def separation_check(model: Backbone, train_x, train_y, val_x, val_y, seed: int, n_mixtures: int = 96) -> dict:
    """Median SDR on held-out seen-class mixtures, queried by the target crop's own embedding
    (how the separator was trained) and by the mean embedding of its class's training clips
    (how APT's baseline queries it)."""
    rng = stream("pretrain_checks", seed, 1)
    crop = int(pretrain.CROP_SECONDS * SAMPLE_RATE)
    mixtures, targets, classes = pretrain.training_mixtures(val_x, val_y, rng, n_mixtures, crop)
    class_mean = {}
    for c in np.unique(classes):
        crops = torch.from_numpy(pretrain.loud_crops(train_x[train_y == c], rng, crop))
        class_mean[int(c)] = model.sed(crops)["latent_output"].mean(dim=0)
    queries = {"own": model.sed(torch.from_numpy(targets))["latent_output"],
               "class_mean": torch.stack([class_mean[int(c)] for c in classes])}
    keep = [i for i, t in enumerate(targets) if not is_silent(t)]
    out = {"val_sdr_mixture": float(np.median([bss_sdr(targets[i], mixtures[i]) for i in keep]))}
    for name, query in queries.items():
        est = model.separator(torch.from_numpy(mixtures), query)["wav"].numpy()
        out[f"val_sdr_{name}_query"] = float(np.median([bss_sdr(targets[i], est[i]) for i in keep]))
    return out


def pretrain_separator_step(sed_dir: str, out_dir: str, config: str = "demo", corpus: str = CORPUS,
                            corpus_uri: str = "", n_classes: int = SEEN_CLASSES,
                            clips_per_class: int = CLIPS_PER_CLASS, val_clips: int = VAL_CLIPS, seed: int = 0,
                            steps: int = SEPARATOR_STEPS, batch_size: int = SEPARATOR_BATCH_SIZE,
                            lr: float = SEPARATOR_LR, compiled: bool = SEPARATOR_COMPILED,
                            query: str = SEPARATOR_QUERY, loss: str = SEPARATOR_LOSS,
                            augment: str = SEPARATOR_AUGMENT) -> dict:
    """Train the separator under the frozen SED from ``sed_dir``; write ``backbone.pt`` and its card to ``out_dir``."""
    _check_separator_choices(query, loss, augment)  # before the corpus and the SED are read
    _check_replaceable(out_dir, (CHECKPOINT, CARD), "out_dir")
    use_available_cores()
    started = time.monotonic()
    train_x, train_y, val_x, val_y = _corpus(corpus, n_classes, clips_per_class, val_clips, seed, corpus_uri)
    model = seeded_backbone(get_config(config), seed)
    sed_path = Path(sed_dir) / SED_CHECKPOINT
    load_strict(model.sed, torch.load(sed_path, map_location="cpu", weights_only=True), "sed", str(sed_path))
    losses = pretrain.train_separator(model.separator, model.sed, train_x, train_y, steps, batch_size, lr, seed,
                                      compiled=compiled, query=query,
                                      clip_embeddings=query_clip_embeddings(model.sed, train_x, query),
                                      loss=functools.partial(separation_loss, name=loss), loss_name=loss,
                                      augment=augment)
    checks = separation_check(model.eval(), train_x, train_y, val_x, val_y, seed)
    log.info("separator on held-out seen mixtures: median SDR %.2f dB (own query), %.2f dB (class mean), "
             "mixture %.2f dB", checks["val_sdr_own_query"], checks["val_sdr_class_mean_query"],
             checks["val_sdr_mixture"])
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        export_backbone(model.sed, model.separator, tmp / CHECKPOINT)
        data = (tmp / CHECKPOINT).read_bytes()
        record = json.loads((Path(sed_dir) / SED_CARD).read_text())
        record.update({"config": config, "corpus": corpus, "corpus_uri": corpus_uri or None,
                       **({"corpus_sha256": debian_sounds.seen_archive_sha256(corpus_uri)}
                          if corpus == "debian_sounds" else {}),
                       "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                       "seen_classes": n_classes, "clips_per_class": clips_per_class, "val_clips": val_clips,
                       "seed": seed, "separator_steps": steps, "separator_batch_size": batch_size,
                       "separator_lr": lr, "separator_compiled": compiled, "separator_query": query,
                       "separator_loss": loss, "separator_augment": augment,
                       "separator_final_loss": float(np.mean(losses[-50:])),
                       **({"separator_final_l1": float(np.mean(losses[-50:]))} if loss == "l1" else {}),
                       "separator_seconds": time.monotonic() - started, "torch": torch.__version__,
                       "threads": torch.get_num_threads(), **cpu_description(), **checks})
        (tmp / CARD).write_text(json.dumps(record, indent=2))
    return record
