"""The frozen backbone: an SED encoder for queries and a query-conditioned separator."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch import nn

from ..errors import AptUssError
from .checkpoints import load_strict, read_state_dict, split_embedded_sed, strip_wrappers
from .config import BackboneConfig, get_config
from .htsat import HTSAT
from .separator import QuerySeparator

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).parent / "weights"
# Configs whose trained weights ship inside the package: config name -> file in WEIGHTS_DIR.
PACKAGED_WEIGHTS = {"demo": "demo.pt"}


def packaged_checkpoint_uri(name: str) -> str:
    """The shipped checkpoint of config ``name``, pinned to the sha256 its card records."""
    path = WEIGHTS_DIR / PACKAGED_WEIGHTS[name]
    card = path.with_suffix(".json")
    if not path.is_file() or not card.is_file():
        raise AptUssError(f"backbone={name!r}: its weights {path} (and card {card.name}) are missing: "
                          "run `make backbone` to train them, or pass checkpoint URIs")
    return f"{path}#sha256={json.loads(card.read_text())['sha256']}"


class Backbone(nn.Module):
    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        self.cfg = cfg
        self.sed = HTSAT(cfg.sed, cfg.sample_rate)
        self.separator = QuerySeparator(cfg.separator, cfg.embed_dim)

    def freeze(self) -> "Backbone":
        """Eval mode (BatchNorm statistics must not drift) and no weight gradients."""
        self.eval()
        self.requires_grad_(False)
        return self


def seeded_backbone(cfg: BackboneConfig, init_seed: int) -> Backbone:
    """A new, trainable backbone whose initial weights depend on ``init_seed`` only (the global RNG is left alone)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        return Backbone(cfg)


def load_backbone(
    config: str | BackboneConfig = "small",
    sed_checkpoint_uri: str = "",
    separator_checkpoint_uri: str = "",
    init_seed: int = 0,
) -> Backbone:
    """Build the named backbone, frozen; weights from checkpoints where given.

    Without a checkpoint, a part keeps a seeded initialisation, identical in every
    process for the same ``init_seed``, so pipeline steps share one backbone.
    """
    cfg = get_config(config) if isinstance(config, str) else config
    if cfg.name in PACKAGED_WEIGHTS and not (sed_checkpoint_uri or separator_checkpoint_uri):
        separator_checkpoint_uri = packaged_checkpoint_uri(cfg.name)  # holds the SED too, under at_model.
    model = seeded_backbone(cfg, init_seed)
    embedded_sed = {}
    if separator_checkpoint_uri:
        state, embedded_sed = split_embedded_sed(read_state_dict(separator_checkpoint_uri, "separator"))
        load_strict(model.separator, state, "separator", separator_checkpoint_uri)
        model.separator.check_transform_kernels(separator_checkpoint_uri)
    if sed_checkpoint_uri:
        state = strip_wrappers(read_state_dict(sed_checkpoint_uri, "sed"))
        load_strict(model.sed, state, "sed", sed_checkpoint_uri)
        model.sed.check_transform_kernels(sed_checkpoint_uri)
    elif embedded_sed:  # the separator checkpoint carries the SED it was trained with
        load_strict(model.sed, embedded_sed, "sed", separator_checkpoint_uri + " (embedded at_model.)")
        model.sed.check_transform_kernels(separator_checkpoint_uri)
    if not (separator_checkpoint_uri and (sed_checkpoint_uri or embedded_sed)):
        log.warning("backbone %s: part(s) without checkpoint use seeded random weights (seed %d)",
                    cfg.name, init_seed)
    return model.freeze()
