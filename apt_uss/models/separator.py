"""Query-conditioned magnitude-mask U-Net separator.

The shape of the paper's ST-SED-SEP (ZeroShotASP) separator, scaled by config: STFT
magnitude -> per-bin BatchNorm -> U-Net whose every conv stage adds a per-channel bias
computed from the condition vector by a Linear layer -> sigmoid mask on the mixture
magnitude -> iSTFT with the mixture phase. The condition enters only through those
additive biases, which is what makes prompt tuning cheap and well-behaved.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import SeparatorConfig


class CondConvBlock(nn.Module):
    """Two conv-BN-ReLU stages, each followed by ``+ Linear(condition)`` per channel."""

    def __init__(self, cin: int, cout: int, cond_dim: int, momentum: float):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout, momentum=momentum)
        self.emb1 = nn.Linear(cond_dim, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, momentum=momentum)
        self.emb2 = nn.Linear(cond_dim, cout)

    def forward(self, x, cond):
        x = F.relu(self.bn1(self.conv1(x))) + self.emb1(cond)[:, :, None, None]
        return F.relu(self.bn2(self.conv2(x))) + self.emb2(cond)[:, :, None, None]


class DecoderBlock(nn.Module):
    def __init__(self, cin: int, cout: int, cond_dim: int, momentum: float):
        super().__init__()
        self.conv1 = nn.ConvTranspose2d(cin, cout, 3, stride=2, bias=False)
        self.bn1 = nn.BatchNorm2d(cout, momentum=momentum)
        self.emb1 = nn.Linear(cond_dim, cout)
        self.conv_block2 = CondConvBlock(cout * 2, cout, cond_dim, momentum)

    def forward(self, x, skip, cond):
        x = self.conv1(x)[:, :, :-1, :-1]  # stride-2 transpose gives 2n+1: drop the extra row/column
        x = F.relu(self.bn1(x)) + self.emb1(cond)[:, :, None, None]
        return self.conv_block2(torch.cat([x, skip], dim=1), cond)


class QuerySeparator(nn.Module):
    def __init__(self, cfg: SeparatorConfig, cond_dim: int):
        super().__init__()
        self.cfg = cfg
        bins = cfg.n_fft // 2 + 1
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)
        self.bn0 = nn.BatchNorm1d(bins, momentum=cfg.bn_momentum)
        chans = (1,) + tuple(cfg.channels)
        m = cfg.bn_momentum
        self.encoder = nn.ModuleList(CondConvBlock(a, b, cond_dim, m) for a, b in zip(chans[:-1], chans[1:]))
        self.centre = CondConvBlock(chans[-1], chans[-1] * 2, cond_dim, m)
        ups = (chans[-1] * 2,) + tuple(reversed(cfg.channels))
        self.decoder = nn.ModuleList(DecoderBlock(a, b, cond_dim, m) for a, b in zip(ups[:-1], ups[1:]))
        self.after = CondConvBlock(cfg.channels[0], cfg.channels[0], cond_dim, m)
        self.to_mask = nn.Conv2d(cfg.channels[0], 1, 1)

    def forward(self, wav: torch.Tensor, condition: torch.Tensor) -> dict[str, torch.Tensor]:
        """``wav`` (B, samples), ``condition`` (B, D) -> ``wav`` (B, samples): the target estimate."""
        cfg = self.cfg
        n = wav.shape[-1]
        spec = torch.stft(wav, cfg.n_fft, cfg.hop, window=self.window, center=True,
                          pad_mode="reflect", return_complex=True)  # (B, F, T)
        mag = spec.abs()
        x = self.bn0(mag).transpose(1, 2).unsqueeze(1)  # (B, 1, T, F)
        frames, bins = x.shape[2], x.shape[3]
        multiple = 2 ** len(self.encoder)
        x = F.pad(x[..., : bins - 1], (0, 0, 0, (-frames) % multiple))  # F -> n_fft/2, T -> multiple
        skips = []
        for block in self.encoder:
            x = block(x, condition)
            skips.append(x)
            x = F.avg_pool2d(x, 2)
        x = self.centre(x, condition)
        for block, skip in zip(self.decoder, reversed(skips)):
            x = block(x, skip, condition)
        x = self.after(x, condition)
        mask = torch.sigmoid(self.to_mask(x))[:, 0, :frames]  # (B, T, F-1)
        mask = F.pad(mask, (0, 1)).transpose(1, 2)  # the cut top bin gets mask 0
        est = torch.istft(spec * mask, cfg.n_fft, cfg.hop, window=self.window, center=True, length=n)
        return {"wav": est}
