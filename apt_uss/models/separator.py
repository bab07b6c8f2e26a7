"""Query-conditioned magnitude-mask U-Net separator (the ZeroShotASP / ST-SED-SEP design).

STFT magnitude -> BatchNorm over frequency bins -> a U-Net whose every conv stage adds a
per-channel bias computed from the condition vector by a Linear layer -> sigmoid mask on
the mixture magnitude -> inverse STFT with the mixture's phase. The condition enters only
through those additive biases. Module names follow the official checkpoint
(``encoder_block{i}.conv_block.*``, ``conv_block{n+1}``, ``decoder_block{i}.*``,
``after_conv_block1``, ``after_conv2``, ``bn0``, ``stft.*``, ``istft.*``), so the same code
loads the paper's 2048-d checkpoint and builds the small CPU configs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from apt_uss.models.config import SeparatorConfig
from apt_uss.models.transforms import attach_istft, attach_stft, check_kernels, istft_kernels, stft_kernels


def mixture_spectrogram(wav: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor) -> torch.Tensor:
    """The complex STFT the separator masks (centred, reflect-padded frames); ``apt_uss.evaluation.oracle`` uses it too."""
    return torch.stft(wav, n_fft, hop, window=window, center=True, pad_mode="reflect", return_complex=True)


def masked_waveform(spec: torch.Tensor, mask: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor,
                    length: int) -> torch.Tensor:
    """The waveform of ``spec * mask``: the mixture's phase kept, ``length`` samples."""
    return torch.istft(spec * mask, n_fft, hop, window=window, center=True, length=length)


class CondConvBlock(nn.Module):
    """Two conv-BN-ReLU stages, each followed by ``+ Linear(condition)`` per channel."""

    def __init__(self, cin: int, cout: int, cond_dim: int, momentum: float):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout, momentum=momentum)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, momentum=momentum)
        self.emb1 = nn.Linear(cond_dim, cout)
        self.emb2 = nn.Linear(cond_dim, cout)

    relu_inplace = False  # frozen_separator's copies set it: nothing there needs a convolution's output

    def forward(self, x, cond):
        x = F.relu(self.bn1(self.conv1(x)), inplace=self.relu_inplace) + self.emb1(cond)[:, :, None, None]
        return F.relu(self.bn2(self.conv2(x)), inplace=self.relu_inplace) + self.emb2(cond)[:, :, None, None]


class EncoderBlock(nn.Module):
    def __init__(self, cin: int, cout: int, cond_dim: int, momentum: float):
        super().__init__()
        self.conv_block = CondConvBlock(cin, cout, cond_dim, momentum)

    def forward(self, x, cond):
        skip = self.conv_block(x, cond)
        return F.avg_pool2d(skip, 2), skip


class DecoderBlock(nn.Module):
    def __init__(self, cin: int, cout: int, cond_dim: int, momentum: float):
        super().__init__()
        self.conv1 = nn.ConvTranspose2d(cin, cout, 3, stride=2, bias=False)
        self.bn1 = nn.BatchNorm2d(cout, momentum=momentum)
        self.emb1 = nn.Linear(cond_dim, cout)
        self.conv_block2 = CondConvBlock(cout * 2, cout, cond_dim, momentum)

    relu_inplace = False

    def forward(self, x, skip, cond):
        x = F.relu(self.bn1(self.conv1(x)), inplace=self.relu_inplace) + self.emb1(cond)[:, :, None, None]
        x = x[:, :, :-1, :-1]  # a stride-2 transpose gives 2n+1 rows/columns: drop the extra one
        return self.conv_block2(torch.cat([x, skip], dim=1), cond)


class QuerySeparator(nn.Module):
    def __init__(self, cfg: SeparatorConfig, cond_dim: int):
        super().__init__()
        self.cfg = cfg
        m = cfg.bn_momentum
        bins = cfg.n_fft // 2 + 1
        attach_stft(self, "stft", cfg.n_fft)
        attach_istft(self, "istft", cfg.n_fft)
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)
        self.bn0 = nn.BatchNorm2d(bins, momentum=m)
        chans = (1,) + tuple(cfg.channels)
        depth = len(cfg.channels)
        for i, (a, b) in enumerate(zip(chans[:-1], chans[1:]), 1):
            self.add_module(f"encoder_block{i}", EncoderBlock(a, b, cond_dim, m))
        self.add_module(f"conv_block{depth + 1}", CondConvBlock(chans[-1], chans[-1] * 2, cond_dim, m))
        ups = (chans[-1] * 2,) + tuple(reversed(cfg.channels))
        for i, (a, b) in enumerate(zip(ups[:-1], ups[1:]), 1):
            self.add_module(f"decoder_block{i}", DecoderBlock(a, b, cond_dim, m))
        self.after_conv_block1 = CondConvBlock(cfg.channels[0], cfg.channels[0], cond_dim, m)
        self.after_conv2 = nn.Conv2d(cfg.channels[0], 1, 1)
        self.depth = depth

    def check_transform_kernels(self, source: str) -> None:
        """After loading: the checkpoint's STFT/iSTFT kernels must be the transform this code computes."""
        n_fft = self.cfg.n_fft
        expected = {f"stft.{k}": v for k, v in stft_kernels(n_fft).items()}
        expected.update({f"istft.{k}": v for k, v in istft_kernels(n_fft).items()})
        check_kernels(self, expected, source, n_fft)

    def mask(self, mag: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """The sigmoid mask (B, F, T) of a magnitude spectrogram ``mag`` (B, F, T) for ``condition`` (B, D)."""
        x = self.bn0(mag.unsqueeze(-1)).squeeze(-1).transpose(1, 2).unsqueeze(1)  # (B, 1, T, F)
        frames, bins = x.shape[2], x.shape[3]
        multiple = 2**self.depth
        x = F.pad(x, (0, 0, 0, (-frames) % multiple))[..., : bins - 1]  # T -> multiple of 2^depth, F -> n_fft/2
        skips = []
        for i in range(1, self.depth + 1):
            x, skip = getattr(self, f"encoder_block{i}")(x, condition)
            skips.append(skip)
        x = getattr(self, f"conv_block{self.depth + 1}")(x, condition)
        for i, skip in enumerate(reversed(skips), 1):
            x = getattr(self, f"decoder_block{i}")(x, skip, condition)
        x = self.after_conv2(self.after_conv_block1(x, condition))
        logits = F.pad(x, (0, 1))[:, 0, :frames]  # the cut top bin gets logit 0, as in the reference
        return torch.sigmoid(logits).transpose(1, 2)  # (B, F, T)

    def forward(self, wav: torch.Tensor, condition: torch.Tensor) -> dict[str, torch.Tensor]:
        """``wav`` (B, samples) or (B, samples, 1), ``condition`` (B, D) -> ``wav`` of the same shape."""
        channel_last = wav.dim() == 3
        if channel_last:
            wav = wav[..., 0]
        cfg = self.cfg
        n = wav.shape[-1]
        spec = mixture_spectrogram(wav, cfg.n_fft, cfg.hop, self.window)  # (B, F, T)
        mask = self.mask(spec.abs(), condition)
        est = masked_waveform(spec, mask, cfg.n_fft, cfg.hop, self.window, n)
        return {"wav": est[..., None] if channel_last else est}
