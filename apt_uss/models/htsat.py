"""HTS-AT: the hierarchical token-semantic audio transformer the paper uses as its SED model.

A Swin transformer over a log-mel spectrogram folded into a square image. Module and
buffer names follow the official checkpoints (``spectrogram_extractor``,
``logmel_extractor.melW``, ``bn0``, ``patch_embed``, ``layers.{i}.blocks.{j}.*``,
``layers.{i}.downsample``, ``norm``, ``tscam_conv``, ``head``). ``latent_output`` (the
query embedding) is the mean of the final LayerNorm'd tokens, taken before the
token-semantic head; with embed dim 256 and four stages it is 2048-d.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from apt_uss.errors import AptUssError
from apt_uss.models.config import SEDConfig
from apt_uss.models.transforms import attach_stft, check_kernels, stft_kernels


def _windows(x: torch.Tensor, w: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * windows, w*w, C)."""
    b, h, wd, c = x.shape
    x = x.view(b, h // w, w, wd // w, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, w * w, c)


def _unwindows(x: torch.Tensor, w: int, h: int, wd: int) -> torch.Tensor:
    b = x.shape[0] // ((h // w) * (wd // w))
    x = x.view(b, h // w, wd // w, w, w, -1).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, wd, -1)


class WindowAttention(nn.Module):
    def __init__(self, dim: int, window: int, heads: int):
        super().__init__()
        self.heads, self.window = heads, window
        self.scale = (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
        self.register_buffer("relative_position_index", rel[..., 0] * (2 * window - 1) + rel[..., 1])
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        bw, n, c = x.shape
        q, k, v = self.qkv(x).reshape(bw, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(n, n, -1).permute(2, 0, 1)  # (heads, n, n)
        if mask is not None:
            windows = mask.shape[0]
            bias = (bias[None] + mask[:, None]).repeat(bw // windows, 1, 1, 1)  # (bw, heads, n, n)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), scale=self.scale)
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class SwinBlock(nn.Module):
    def __init__(self, dim: int, resolution: int, heads: int, window: int, shift: bool, mlp_ratio: float):
        super().__init__()
        self.resolution = resolution
        self.window = min(window, resolution)
        self.shift = self.window // 2 if shift and resolution > window else 0
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, self.window, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        if self.shift:
            # Tokens rolled in from the other edge may only attend within their own region.
            region = torch.zeros(1, resolution, resolution, 1)
            cuts = (slice(0, -self.window), slice(-self.window, -self.shift), slice(-self.shift, None))
            for i, (hs, ws) in enumerate((h, w) for h in cuts for w in cuts):
                region[:, hs, ws, :] = i
            ids = _windows(region, self.window)[..., 0]
            mask = ids[:, None, :] - ids[:, :, None]
            self.register_buffer("attn_mask", mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0))
        else:
            self.attn_mask = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        r = self.resolution
        h = self.norm1(x).view(b, r, r, c)
        if self.shift:
            h = torch.roll(h, (-self.shift, -self.shift), dims=(1, 2))
        h = _unwindows(self.attn(_windows(h, self.window), self.attn_mask), self.window, r, r)
        if self.shift:
            h = torch.roll(h, (self.shift, self.shift), dims=(1, 2))
        x = x + h.reshape(b, n, c)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    def __init__(self, dim: int, resolution: int):
        super().__init__()
        self.resolution = resolution
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x):
        b, _, c = x.shape
        r = self.resolution
        x = x.view(b, r, r, c)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class Stage(nn.Module):
    def __init__(self, dim, resolution, depth, heads, window, mlp_ratio, downsample: bool):
        super().__init__()
        self.blocks = nn.ModuleList(SwinBlock(dim, resolution, heads, window, i % 2 == 1, mlp_ratio)
                                    for i in range(depth))
        self.downsample = PatchMerging(dim, resolution) if downsample else None

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.downsample(x) if self.downsample is not None else x


def mel_filterbank(cfg: SEDConfig, sample_rate: int) -> torch.Tensor:
    """(freq bins, mels) Slaney-style mel filters, librosa's default (``logmel_extractor.melW``)."""
    import torchaudio.functional as AF

    return AF.melscale_fbanks(cfg.n_fft // 2 + 1, cfg.f_min, min(cfg.f_max, sample_rate / 2), cfg.n_mels,
                              sample_rate, norm="slaney", mel_scale="slaney")


class HTSAT(nn.Module):
    def __init__(self, cfg: SEDConfig, sample_rate: int):
        super().__init__()
        self.cfg = cfg
        self.freq_ratio = cfg.spec_size // cfg.n_mels
        if self.freq_ratio * cfg.n_mels != cfg.spec_size:
            raise AptUssError(f"SED config: spec_size {cfg.spec_size} must be a multiple of n_mels {cfg.n_mels}")
        self.spectrogram_extractor = nn.Module()
        attach_stft(self.spectrogram_extractor, "stft", cfg.n_fft)
        self.logmel_extractor = nn.Module()
        self.logmel_extractor.register_buffer("melW", mel_filterbank(cfg, sample_rate))
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)
        self.bn0 = nn.BatchNorm2d(cfg.n_mels)
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(1, cfg.embed_dim, cfg.patch_size, stride=cfg.patch_stride,
                                          padding=(cfg.patch_size - cfg.patch_stride) // 2)
        self.patch_embed.norm = nn.LayerNorm(cfg.embed_dim)
        grid = cfg.spec_size // cfg.patch_stride
        stages = len(cfg.depths)
        self.layers = nn.ModuleList(
            Stage(cfg.embed_dim * 2**i, grid // 2**i, cfg.depths[i], cfg.heads[i], cfg.window_size,
                  cfg.mlp_ratio, downsample=i < stages - 1)
            for i in range(stages))
        self.num_features = cfg.embed_dim * 2 ** (stages - 1)
        self.norm = nn.LayerNorm(self.num_features)
        freq_tokens = cfg.spec_size // 2 ** (stages - 1) // cfg.patch_stride // self.freq_ratio
        self.tscam_conv = nn.Conv2d(self.num_features, cfg.n_classes, (freq_tokens, 3), padding=(0, 1))
        self.head = nn.Linear(cfg.n_classes, cfg.n_classes)  # kept for the checkpoint; unused at inference
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def check_transform_kernels(self, source: str) -> None:
        """After loading: the checkpoint's STFT kernels must be the transform this code computes."""
        expected = {f"spectrogram_extractor.stft.{k}": v for k, v in stft_kernels(self.cfg.n_fft).items()}
        check_kernels(self, expected, source, self.cfg.n_fft)

    def log_mel(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, samples) -> (B, 1, frames, mels): power mel in dB (amin 1e-10, ref 1, no top_db)."""
        spec = torch.stft(wav, self.cfg.n_fft, self.cfg.hop, window=self.window, center=True,
                          pad_mode="reflect", return_complex=True).abs() ** 2  # (B, F, T)
        mel = spec.transpose(1, 2) @ self.logmel_extractor.melW
        return (10.0 * torch.log10(mel.clamp_min(1e-10)))[:, None]

    def to_image(self, x: torch.Tensor) -> torch.Tensor:
        """Inference tiling: repeat the frames, stretch to spec_size * freq_ratio, fold into a square."""
        target_t = self.cfg.spec_size * self.freq_ratio
        frames = x.shape[2]
        if frames > target_t:
            raise AptUssError(f"SED input of {frames} frames is longer than the {target_t} the model takes")
        x = x.repeat(1, 1, target_t // frames, 1)
        if x.shape[2] < target_t:
            x = F.interpolate(x, (target_t, x.shape[3]), mode="bicubic", align_corners=True)
        b, c, t, f = x.shape
        x = x.transpose(2, 3).reshape(b, c, f, self.freq_ratio, t // self.freq_ratio)
        return x.permute(0, 1, 3, 2, 4).reshape(b, c, f * self.freq_ratio, t // self.freq_ratio)

    def forward(self, wav: torch.Tensor, mixup_lambda=None, infer_mode: bool = True) -> dict[str, torch.Tensor]:
        """``wav`` (B, samples) -> ``latent_output`` (B, D) and ``clipwise_output`` (B, classes)."""
        x = self.log_mel(wav)
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        x = self.to_image(x)
        x = self.patch_embed.norm(self.patch_embed.proj(x).flatten(2).transpose(1, 2))
        for layer in self.layers:
            x = layer(x)
        x = self.norm(x)
        b, n, c = x.shape
        side = int(math.isqrt(n))
        x = x.transpose(1, 2).reshape(b, c, side, side)
        bins = side // self.freq_ratio
        x = x.reshape(b, c, side // bins, bins, side).permute(0, 1, 3, 2, 4).reshape(b, c, bins, -1)
        latent = x.flatten(2).mean(dim=2)
        clipwise = torch.sigmoid(self.tscam_conv(x).flatten(2).mean(dim=2))
        return {"latent_output": latent, "clipwise_output": clipwise}
