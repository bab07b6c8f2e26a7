"""The frozen backbone: an SED encoder for queries and a query-conditioned separator."""

from __future__ import annotations

import logging

import torch
from torch import nn

from ..errors import AptUssError
from ..uris import local_path
from .config import BackboneConfig, get_config
from .sed import SoundEventEncoder
from .separator import QuerySeparator

log = logging.getLogger(__name__)


class Backbone(nn.Module):
    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        self.cfg = cfg
        self.sed = SoundEventEncoder(cfg.sed, cfg.sample_rate)
        self.separator = QuerySeparator(cfg.separator, cfg.embed_dim)

    def freeze(self) -> "Backbone":
        """Eval mode (BatchNorm statistics must not drift) and no weight gradients."""
        self.eval()
        self.requires_grad_(False)
        return self


def load_state_dict_strict(module: nn.Module, uri: str, slot: str) -> None:
    """Load a plain or Lightning-style (``state_dict`` key) checkpoint; any mismatch is an error."""
    path = local_path(uri, f"{slot.lower()}_checkpoint_uri")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or foreign files raise many different types
        raise AptUssError(f"{slot} checkpoint {uri!r} is not a readable PyTorch checkpoint: {exc}") from None
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise AptUssError(f"{slot} checkpoint {uri!r} holds no state dict")
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or shapes:
        def few(keys):
            return ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")
        raise AptUssError(
            f"{slot} checkpoint {uri!r} does not fit the {slot} model: "
            f"missing [{few(missing)}], unexpected [{few(unexpected)}], shape mismatch [{few(shapes)}]"
        )
    module.load_state_dict(state, strict=True)


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
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        model = Backbone(cfg)
    if sed_checkpoint_uri:
        load_state_dict_strict(model.sed, sed_checkpoint_uri, "SED")
    if separator_checkpoint_uri:
        load_state_dict_strict(model.separator, separator_checkpoint_uri, "separator")
    if not (sed_checkpoint_uri and separator_checkpoint_uri):
        log.warning("backbone %s: part(s) without checkpoint use seeded random weights (seed %d)",
                    cfg.name, init_seed)
    return model.freeze()
