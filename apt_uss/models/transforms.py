"""The fixed STFT/iSTFT kernels the official checkpoints store, and the check that they match.

The reference models compute their transforms as convolutions (torchlibrosa) and save
those kernels in every checkpoint. Here the forward passes use ``torch.stft`` /
``torch.istft`` (equal within 1e-4), and the stored kernels are kept under the same keys so
that a checkpoint's kernels are loaded and checked, never silently dropped.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from apt_uss.errors import AptUssError


class FixedKernel(nn.Module):
    """One fixed kernel under the checkpoint's ``<name>.weight`` key."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.register_buffer("weight", weight)


def _hann(n_fft: int) -> torch.Tensor:
    return torch.hann_window(n_fft, periodic=True, dtype=torch.float64)


def stft_kernels(n_fft: int) -> dict[str, torch.Tensor]:
    """Real and imaginary DFT rows times the Hann window: (n_fft/2+1, 1, n_fft) each."""
    n = torch.arange(n_fft, dtype=torch.float64)
    angle = 2 * math.pi * torch.outer(n[: n_fft // 2 + 1], n) / n_fft
    window = _hann(n_fft)
    return {"conv_real.weight": (torch.cos(angle) * window)[:, None, :].float(),
            "conv_imag.weight": (-torch.sin(angle) * window)[:, None, :].float()}


def istft_kernels(n_fft: int) -> dict[str, torch.Tensor]:
    """Inverse DFT times the window, over n_fft: (n_fft, n_fft, 1) each; and the overlap-add window."""
    n = torch.arange(n_fft, dtype=torch.float64)
    angle = 2 * math.pi * torch.outer(n, n) / n_fft
    window = _hann(n_fft)
    return {"conv_real.weight": (torch.cos(angle) * window[None, :] / n_fft).T[:, :, None].float(),
            "conv_imag.weight": (torch.sin(angle) * window[None, :] / n_fft).T[:, :, None].float(),
            "ola_window": (window**2).float()}


def attach_stft(parent: nn.Module, name: str, n_fft: int) -> None:
    """``parent.<name>.conv_real`` / ``conv_imag`` kernels, as torchlibrosa's STFT names them."""
    holder = nn.Module()
    for key, value in stft_kernels(n_fft).items():
        holder.add_module(key.split(".")[0], FixedKernel(value))
    parent.add_module(name, holder)


def attach_istft(parent: nn.Module, name: str, n_fft: int) -> None:
    holder = nn.Module()
    for key, value in istft_kernels(n_fft).items():
        if key == "ola_window":
            holder.register_buffer(key, value)
        else:
            holder.add_module(key.split(".")[0], FixedKernel(value))
    parent.add_module(name, holder)


def check_kernels(module: nn.Module, expected: dict[str, torch.Tensor], source: str, n_fft: int,
                  atol: float = 1e-4) -> None:
    """Fail if a loaded kernel is not the transform this code computes (other n_fft or window)."""
    state = module.state_dict()
    for key, value in expected.items():
        if not torch.allclose(state[key].float().cpu(), value, atol=atol):
            raise AptUssError(f"{source}: {key} differs from the STFT this code computes (n_fft {n_fft}, "
                              "Hann): the checkpoint was made with other STFT settings")
