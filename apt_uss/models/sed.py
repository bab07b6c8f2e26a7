"""Sound event detection encoder: clip waveform -> utterance-level embedding.

Same interface as the paper's HTS-AT (``latent_output``, ``clipwise_output``) with a
small convolutional body, so a larger SED model can take its place.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchaudio.transforms import MelSpectrogram

from .config import SEDConfig


class _ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, 2)


class SoundEventEncoder(nn.Module):
    def __init__(self, cfg: SEDConfig, sample_rate: int):
        super().__init__()
        self.mel = MelSpectrogram(
            sample_rate=sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop, n_mels=cfg.n_mels,
            f_min=cfg.f_min, f_max=min(cfg.f_max, sample_rate / 2), power=2.0,
        )
        self.bn0 = nn.BatchNorm2d(cfg.n_mels)
        chans = (1,) + tuple(cfg.channels)
        self.blocks = nn.ModuleList(_ConvBlock(a, b) for a, b in zip(chans[:-1], chans[1:]))
        self.fc_latent = nn.Linear(chans[-1], cfg.embed_dim)
        self.head = nn.Linear(cfg.embed_dim, cfg.n_classes)

    def forward(self, wav: torch.Tensor) -> dict[str, torch.Tensor]:
        """``wav`` (B, samples) -> ``latent_output`` (B, D) and ``clipwise_output`` (B, classes)."""
        spec = 10.0 * torch.log10(self.mel(wav).clamp_min(1e-10))  # (B, mels, frames)
        x = self.bn0(spec.unsqueeze(-1)).squeeze(-1).transpose(1, 2).unsqueeze(1)  # (B,1,T,M)
        for block in self.blocks:
            x = block(x)
        latent = self.fc_latent(x.mean(dim=(2, 3)))
        return {"latent_output": latent, "clipwise_output": torch.sigmoid(self.head(F.relu(latent)))}
