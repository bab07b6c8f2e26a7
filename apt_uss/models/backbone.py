"""The frozen backbone: an SED encoder for queries and a query-conditioned separator."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from apt_uss.data.streams import torch_seed
from apt_uss.errors import AptUssError
from apt_uss.models.checkpoints import (
    checkpoint_sha256,
    load_strict,
    read_state_dict,
    split_embedded_sed,
    strip_wrappers,
)
from apt_uss.models.choice import PACKAGED_WEIGHTS, BackboneChoice, packaged_checkpoint_uri
from apt_uss.models.config import BackboneConfig, get_config
from apt_uss.models.htsat import HTSAT
from apt_uss.models.separator import QuerySeparator

log = logging.getLogger(__name__)

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
    """A new, trainable backbone whose initial weights depend on ``init_seed`` only (the global RNG is left alone).

    torch's generator is seeded from the ``backbone_init`` stream, not with ``init_seed`` itself, so the
    initialisation shares no draws with any other purpose keyed by the same seed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch_seed("backbone_init", init_seed))
        return Backbone(cfg)


def load_backbone(
    config: str | BackboneConfig = "demo",
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
    model.has_sed_weights = bool(sed_checkpoint_uri or embedded_sed)
    if not (separator_checkpoint_uri and (sed_checkpoint_uri or embedded_sed)):
        log.warning("backbone %s: part(s) without checkpoint use seeded random weights (seed %d)",
                    cfg.name, init_seed)
    return model.freeze()




@dataclass(frozen=True)
class BackboneSpec(BackboneChoice):
    """A ``BackboneChoice`` that loads its backbone (``load``) and names its weights (``provenance``)."""

    def load(self) -> Backbone:
        """The frozen backbone on CPU (move it to ``resolve_device(spec.device)``), with its ``provenance``."""
        self.check_weights()
        model = load_backbone(self.name, self.sed_checkpoint_uri, self.separator_checkpoint_uri, self.seed)
        if not self.random_weights and not model.has_sed_weights:
            raise AptUssError(f"backbone={self.name!r}: {self.separator_checkpoint_uri} carries no SED: "
                              "give sed_checkpoint_uri, or random_weights=true for a smoke run")
        model.provenance = self.provenance(model.has_sed_weights)
        model.spec = self
        return model

    def provenance(self, has_sed_weights: bool = True) -> dict[str, str]:
        """What the weights are, to record beside every result: the config, and each part's sha256
        (``random:<seed>`` for a part on seeded random weights, ``embedded:<separator>`` for an SED carried in
        the separator checkpoint)."""
        separator_uri = self.separator_weights_uri()
        separator = f"sha256:{checkpoint_sha256(separator_uri, 'separator')}" if separator_uri else \
            f"random:{self.seed}"
        if self.sed_checkpoint_uri:
            sed = f"sha256:{checkpoint_sha256(self.sed_checkpoint_uri, 'sed')}"
        else:
            sed = f"embedded:{separator}" if separator_uri and has_sed_weights else f"random:{self.seed}"
        return {"backbone": self.name, "sed_weights": sed, "separator_weights": separator}
