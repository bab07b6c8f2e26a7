"""The waveform losses prompt tuning can minimise."""

from __future__ import annotations

import torch

from apt_uss.data.audio import SILENCE_PEAK
from apt_uss.params.spec import check_choice

# "l1" is the paper's. "snr" is the negative signal-to-noise ratio of each estimate in dB, capped at
# SNR_CAP_DB. Why it exists: L1 charges a leak of a dense interferer over every sample, but a missed
# sparse target (clicks, short events) only over the few samples it occupies, so under L1 muting such a
# target is nearly optimal, and the demo separator, trained with L1, returns near-silence for its pulse
# trains (docs/demo-backbone.md, "Why the demo tunes on the SNR of loud crops"). The SNR weighs each mixture by its own
# target's energy, so missing a target costs the same whatever its shape.
SNR_CAP_DB = 30.0


def check_loss(name: str) -> None:
    check_choice("loss_function", name)


def negative_snr(estimate: torch.Tensor, target: torch.Tensor, cap_db: float = SNR_CAP_DB) -> torch.Tensor:
    """Mean over the batch of -10 log10(|x|^2 / (|x - x_hat|^2 + tau |x|^2)), tau = 10^(-cap/10).

    The cap keeps estimates that are already good from dominating the gradient (and the loss finite for a
    perfect one). A silent target (peak under ``SILENCE_PEAK``, e.g. a crop of ESC-50's zero padding) has
    no meaningful SNR and a gradient that grows without bound as its energy falls, so it contributes nothing.
    """
    if estimate.shape != target.shape:
        raise ValueError(f"estimate shape {tuple(estimate.shape)} != target shape {tuple(target.shape)}")
    tau = 10.0 ** (-cap_db / 10.0)
    energy = target.pow(2).sum(dim=-1)
    error = (target - estimate).pow(2).sum(dim=-1)
    audible = target.abs().amax(dim=-1) >= SILENCE_PEAK
    # Silent items get energy 1 before the division, so they stay finite (no 0 * inf = NaN) and are then dropped.
    safe = torch.where(audible, energy, torch.ones_like(energy))
    per_item = 10.0 * torch.log10((error + tau * safe) / safe)
    return torch.where(audible, per_item, torch.zeros_like(per_item)).sum() / audible.sum().clamp(min=1)


def separation_loss(estimate: torch.Tensor, target: torch.Tensor, name: str = "l1") -> torch.Tensor:
    """The loss ``name`` (one of ``spec.LOSS_FUNCTIONS``) of a batch of estimates (B, samples) against their targets."""
    check_loss(name)
    return torch.nn.functional.l1_loss(estimate, target) if name == "l1" else negative_snr(estimate, target)
