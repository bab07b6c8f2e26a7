"""The oracle mask: the ceiling of what the separator's kind of output can reach on a mixture.

The separator multiplies the mixture's STFT by a mask in (0, 1) and keeps the mixture's
phase. Knowing the target, the best such mask in each time-frequency bin (least squared
error) is the phase-sensitive mask Re(T M*) / |M|^2 clipped to [0, 1]. Its SDR shows how
much room a backbone leaves on a class: a low score means the mixture itself is hard to
mask apart; a high one with a low separator score means the backbone, not the task, limits
what any prompt can achieve. (SiSEC reports such oracle masks beside its systems.)
"""

from __future__ import annotations

import numpy as np
import torch

from apt_uss.evaluation.metrics import bss_sdr
from apt_uss.models.separator import masked_waveform, mixture_spectrogram


def oracle_mask_estimate(mixture: np.ndarray, target: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """The estimate of ``target`` from ``mixture`` (1-D, equal length) by the clipped phase-sensitive mask,
    on the separator's own STFT and inverse (Hann window)."""
    if mixture.shape != target.shape or mixture.ndim != 1:
        raise ValueError(f"oracle mask: mixture {mixture.shape} and target {target.shape} must be 1-D of one length")
    window = torch.hann_window(n_fft, dtype=torch.float64)
    mix_spec, target_spec = (mixture_spectrogram(torch.from_numpy(x.astype(np.float64)), n_fft, hop, window)
                             for x in (mixture, target))
    power = mix_spec.abs() ** 2
    mask = torch.where(power > 0, (target_spec * mix_spec.conj()).real / power.clamp_min(1e-30),
                       torch.zeros_like(power)).clamp(0.0, 1.0)
    return masked_waveform(mix_spec, mask, n_fft, hop, window, len(mixture)).numpy()


def oracle_mask_sdr(mixture: np.ndarray, target: np.ndarray, n_fft: int, hop: int) -> float:
    """SDR (dB) of ``oracle_mask_estimate`` against ``target`` (which must not be silent)."""
    return bss_sdr(target, oracle_mask_estimate(mixture, target, n_fft, hop))
