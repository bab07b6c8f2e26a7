"""The separator with one prompt built in and its STFT and iSTFT written as convolutions, so the whole graph
exports to ONNX (``torch.stft`` returns complex tensors, which ONNX's exporters do not take).

``PromptedSeparator(separator, prompt)(mixture)`` equals ``separator(mixture, prompt)["wav"]`` to float32
rounding: the same centred, reflect-padded Hann frames, the same mask network (``QuerySeparator.mask``), and an
inverse STFT that overlap-adds windowed inverse DFTs and divides by the summed squared window, as
``torch.istft`` does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from apt_uss.models.separator import QuerySeparator


def _dft_kernels(n_fft: int) -> tuple[torch.Tensor, ...]:
    """Forward (windowed DFT rows as conv1d kernels) and inverse (one-sided inverse DFT, windowed) matrices."""
    n = torch.arange(n_fft, dtype=torch.float64)
    k = n[: n_fft // 2 + 1]
    angle = 2 * math.pi * torch.outer(k, n) / n_fft  # (F, N)
    window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
    forward_re = (torch.cos(angle) * window)[:, None, :]
    forward_im = (-torch.sin(angle) * window)[:, None, :]
    weight = torch.full((len(k), 1), 2.0, dtype=torch.float64)
    weight[0] = weight[-1] = 1.0  # DC and Nyquist appear once in a one-sided spectrum
    inverse_re = weight * torch.cos(angle) / n_fft * window
    inverse_im = weight * torch.sin(angle) / n_fft * window
    return tuple(t.float() for t in (forward_re, forward_im, inverse_re, inverse_im, window**2))


class PromptedSeparator(nn.Module):
    """``mixture`` (batch, samples) float32 at the separator's rate -> the prompt's estimate, same shape."""

    def __init__(self, separator: QuerySeparator, prompt: torch.Tensor):
        super().__init__()
        self.separator = separator.eval()
        self.n_fft, self.hop = separator.cfg.n_fft, separator.cfg.hop
        self.register_buffer("prompt", prompt.detach().float().reshape(1, -1))
        for name, value in zip(("forward_re", "forward_im", "inverse_re", "inverse_im", "window_sq"),
                               _dft_kernels(self.n_fft)):
            self.register_buffer(name, value)
        self.register_buffer("overlap_add", torch.eye(self.n_fft)[:, None, :])  # (N, 1, N) for conv_transpose1d

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        length = mixture.shape[-1]
        pad = self.n_fft // 2
        padded = F.pad(mixture[:, None, :], (pad, pad), mode="reflect")
        re = F.conv1d(padded, self.forward_re, stride=self.hop)  # (B, F, T)
        im = F.conv1d(padded, self.forward_im, stride=self.hop)
        mask = self.separator.mask(torch.sqrt(re * re + im * im), self.prompt.expand(mixture.shape[0], -1))
        frames = (re * mask).transpose(1, 2) @ self.inverse_re - (im * mask).transpose(1, 2) @ self.inverse_im
        out = F.conv_transpose1d(frames.transpose(1, 2), self.overlap_add, stride=self.hop)  # (B, 1, L)
        ones = torch.ones_like(frames[:1]).transpose(1, 2) * self.window_sq[None, :, None]
        envelope = F.conv_transpose1d(ones, self.overlap_add, stride=self.hop)
        out = out / torch.clamp(envelope, min=1e-11)
        return out[:, 0, pad : pad + length]
