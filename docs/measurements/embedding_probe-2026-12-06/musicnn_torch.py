"""musicnn's MTT_musicnn tagger (Pons & Serra 2019) in PyTorch, for the embedding probe only (not shipped).

The architecture follows the facts of musicnn 0.1.0's models.py (PyPI wheel musicnn-0.1.0-py3-none-any.whl, ISC
licence, sha256 f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa); the weights are read from the wheel's MTT_musicnn TensorFlow checkpoint by tf_bundle.py
(`pip download --no-deps musicnn==0.1.0`, unzip; no TensorFlow needed). Trained on MagnaTagATune (50 music tags).
Checked against TensorFlow running the wheel's own graph: probe_output.txt."""
import math

import torch
import torch.nn.functional as F
from torch import nn
import torchaudio

BN_EPS = 1e-3
SR, N_FFT, HOP, N_MELS = 16000, 512, 256, 96


class BN(nn.Module):
    def __init__(self, n):
        super().__init__()
        for k in ("gamma", "beta", "moving_mean", "moving_variance"):
            self.register_buffer(k, torch.zeros(n))

    def forward(self, x):  # channels last
        return (x - self.moving_mean) * torch.rsqrt(self.moving_variance + BN_EPS) * self.gamma + self.beta


class Musicnn(nn.Module):
    def __init__(self, n_tags=50, midend=64, backend=200):
        super().__init__()
        self.bn_in = BN(1)
        self.f74 = nn.Conv2d(1, 204, (7, 38)); self.bn74 = BN(204)
        self.f77 = nn.Conv2d(1, 204, (7, 67)); self.bn77 = BN(204)
        self.s = nn.ModuleList([nn.Conv2d(1, 51, (k, 1)) for k in (128, 64, 32)])
        self.bn_s = nn.ModuleList([BN(51) for _ in range(3)])
        self.m = nn.ModuleList([nn.Conv1d(561, midend, 7), nn.Conv1d(midend, midend, 7), nn.Conv1d(midend, midend, 7)])
        self.bn_m = nn.ModuleList([BN(midend) for _ in range(3)])
        self.bn_pool = BN(2 * (561 + 3 * midend))
        self.dense = nn.Linear(2 * (561 + 3 * midend), backend)
        self.bn_dense = BN(backend)
        self.out = nn.Linear(backend, n_tags)
        fb = torchaudio.functional.melscale_fbanks(N_FFT // 2 + 1, 0.0, SR / 2, N_MELS, SR, norm="slaney",
                                                   mel_scale="slaney")
        self.register_buffer("mel_fb", fb)
        self.register_buffer("window", torch.hann_window(N_FFT))

    def logmel(self, wav16k):
        spec = torch.stft(wav16k, N_FFT, HOP, window=self.window, center=True, pad_mode="constant",
                          return_complex=True).abs().pow(2)  # (B, F, T)
        mel = torch.matmul(spec.transpose(1, 2), self.mel_fb)  # (B, T, 96)
        return torch.log10(10000 * mel + 1)

    def features(self, x):
        """x: (B, T, 96) log-mel -> dict of penultimate (B,200), pooled (B,1506), logits."""
        x = self.bn_in(x.unsqueeze(-1)).squeeze(-1).unsqueeze(1)  # (B,1,T,96)
        xp = F.pad(x, (0, 0, 3, 3))
        front = []
        for conv, bn in ((self.f74, self.bn74), (self.f77, self.bn77)):
            y = F.relu(conv(xp))  # (B,C,T,W)
            y = bn(y.permute(0, 2, 3, 1)).amax(dim=2)  # (B,T,C)
            front.append(y)
        for conv, bn in zip(self.s, self.bn_s):
            k = conv.kernel_size[0]
            y = F.relu(conv(F.pad(x, (0, 0, (k - 1) // 2, k // 2))))
            front.append(bn(y.permute(0, 2, 3, 1)).amax(dim=2))
        fe = torch.cat(front, dim=2)  # (B,T,561)
        feats = [fe]
        h = fe
        for i, (conv, bn) in enumerate(zip(self.m, self.bn_m)):
            y = bn(F.relu(conv(F.pad(h.transpose(1, 2), (3, 3)))).transpose(1, 2))
            h = y if i == 0 else y + h
            feats.append(h)
        mid = torch.cat(feats, dim=2)  # (B,T,753)
        pooled = torch.stack([mid.amax(dim=1), mid.mean(dim=1)], dim=2).flatten(1)  # interleaved max, mean
        pen = self.bn_dense(F.relu(self.dense(self.bn_pool(pooled))))
        return {"penultimate": pen, "pooled": pooled, "logits": self.out(pen),
                "mean_pool": mid.mean(dim=1), "max_pool": mid.amax(dim=1)}


def load_tf(model: Musicnn, vars_: dict):
    t = lambda a: torch.from_numpy(a)
    def bn(mod, name):
        for k in ("gamma", "beta", "moving_mean", "moving_variance"):
            getattr(mod, k).copy_(t(vars_[f"{name}/{k}"]))
    def conv2d(mod, name):
        mod.weight.data.copy_(t(vars_[f"{name}/kernel"]).permute(3, 2, 0, 1))
        mod.bias.data.copy_(t(vars_[f"{name}/bias"]))
    def conv1d(mod, name):  # TF (7, W, 1, C) over (T, W) -> torch (C, W, 7)
        mod.weight.data.copy_(t(vars_[f"{name}/kernel"])[:, :, 0, :].permute(2, 1, 0))
        mod.bias.data.copy_(t(vars_[f"{name}/bias"]))
    with torch.no_grad():
        bn(model.bn_in, "batch_normalization")
        conv2d(model.f74, "conv2d"); bn(model.bn74, "batch_normalization_1")
        conv2d(model.f77, "conv2d_1"); bn(model.bn77, "batch_normalization_2")
        for i in range(3):
            conv2d(model.s[i], f"conv2d_{2 + i}"); bn(model.bn_s[i], f"batch_normalization_{3 + i}")
        for i in range(3):
            conv1d(model.m[i], f"conv2d_{5 + i}"); bn(model.bn_m[i], f"batch_normalization_{6 + i}")
        bn(model.bn_pool, "batch_normalization_9")
        model.dense.weight.copy_(t(vars_["dense/kernel"]).T); model.dense.bias.copy_(t(vars_["dense/bias"]))
        bn(model.bn_dense, "batch_normalization_10")
        model.out.weight.copy_(t(vars_["dense_1/kernel"]).T); model.out.bias.copy_(t(vars_["dense_1/bias"]))
    return model
