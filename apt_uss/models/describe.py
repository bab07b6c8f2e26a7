"""Parameter counts of a backbone config, and how small the prompt table is beside them."""

from __future__ import annotations

from torch import nn

from apt_uss.models.backbone import Backbone
from apt_uss.models.config import get_config


def _count(module: nn.Module, keep=lambda name: True) -> int:
    return sum(p.numel() for n, p in module.named_parameters() if keep(n))


def _frozen_kernels(module: nn.Module) -> int:
    """Fixed transform weights stored with the model (STFT/iSTFT/mel kernels), not learned."""
    persistent = module.state_dict()
    return sum(b.numel() for n, b in module.named_buffers()
               if n in persistent and b.is_floating_point()
               and not n.endswith(("running_mean", "running_var", "attn_mask")))


def describe(config: str, prompt_classes=(4, 50)) -> dict:
    """Counts for the named config (built on the CPU: ``paper`` takes about 1.5 GB for a moment)."""
    cfg = get_config(config)
    model = Backbone(cfg)
    sep_learnable = _count(model.separator)
    out = {
        "config": cfg.name,
        "embed_dim": cfg.embed_dim,
        "sed_learnable": _count(model.sed),
        "sed_frozen_kernels": _frozen_kernels(model.sed),
        "separator_learnable": sep_learnable,
        "separator_conditioning": _count(model.separator, lambda n: ".emb" in f".{n}"),
        "separator_frozen_kernels": _frozen_kernels(model.separator),
    }
    for k in prompt_classes:
        out[f"prompts_{k}_classes"] = k * cfg.embed_dim
        out[f"prompts_{k}_classes_fraction_of_separator"] = k * cfg.embed_dim / sep_learnable
    return out


def format_description(d: dict) -> str:
    rows = [f"backbone config {d['config']!r} (prompt dimension {d['embed_dim']})",
            f"  SED:       {d['sed_learnable'] / 1e6:9.2f} M learnable, {d['sed_frozen_kernels'] / 1e6:.2f} M frozen kernels",
            f"  separator: {d['separator_learnable'] / 1e6:9.2f} M learnable "
            f"({d['separator_conditioning'] / 1e6:.2f} M in conditioning layers), "
            f"{d['separator_frozen_kernels'] / 1e6:.2f} M frozen kernels"]
    for key in sorted(k for k in d if k.startswith("prompts_") and k.endswith("_classes")):
        k = key.split("_")[1]
        rows.append(f"  prompts for {k:>2} classes: {d[key]:,} parameters = "
                    f"{100 * d[key + '_fraction_of_separator']:.3f}% of the separator's learnable parameters")
    return "\n".join(rows)
