"""A frozen separator for prompt tuning and evaluation, where no weight ever changes.

An eval-mode BatchNorm is a per-channel affine map, so it folds into the convolution
before it: one pass over the activations instead of three (convolution, BN forward, BN
backward). At the U-Net's full-resolution levels those passes are memory-bound and a large
part of a tuning step on CPU (docs/performance.md has the measured gain). The folded model
equals the original up to float rounding. (A hand-written input-gradient-only backward for
the convolutions was also tried: oneDNN's own backward, with frozen weights, was as fast.)

On CPU the copy also keeps its convolution weights channels-last (NHWC), so every
activation after the first convolution is channels-last too: oneDNN then computes in its
native layout instead of reordering each convolution's input, output and gradient from NCHW
and back. On 2 CPU cores that alone took a `small` tuning step from 2.6 to 4.5 steps/s
(docs/performance.md). CUDA copies keep PyTorch's default layout: cuDNN's choice there is
precision-dependent and has not been measured.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from apt_uss.models.separator import CondConvBlock, DecoderBlock, QuerySeparator


def _bn_scale_shift(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    # Float64 so that folding adds no rounding of its own beyond the final cast.
    scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    return scale, bn.bias.double() - bn.running_mean.double() * scale


def _fold(conv: nn.Conv2d | nn.ConvTranspose2d, bn: nn.BatchNorm2d, out_axis: int) -> nn.Module:
    scale, shift = _bn_scale_shift(bn)
    shape = [1, 1, 1, 1]
    shape[out_axis] = -1  # Conv2d weights are (out, in, k, k), ConvTranspose2d's (in, out, k, k)
    weight = conv.weight.detach().double() * scale.view(shape)
    bias = shift + (conv.bias.detach().double() * scale if conv.bias is not None else 0.0)
    folded = copy.deepcopy(conv)
    dtype = conv.weight.dtype  # back to the convolution's own precision, float64 included
    folded.weight = nn.Parameter(weight.to(dtype).contiguous(), requires_grad=False)
    folded.bias = nn.Parameter(bias.to(dtype), requires_grad=False)
    return folded


def frozen_separator(separator: QuerySeparator) -> QuerySeparator:
    """A copy of ``separator`` in eval mode, weights frozen, each BatchNorm folded into the
    convolution before it (channels-last on CPU): the same function of (mixture, condition) for
    callers that never change the weights. Gradients still flow to the condition (the prompts)."""
    frozen = copy.deepcopy(separator).eval()
    for module in frozen.modules():
        if isinstance(module, CondConvBlock):
            module.conv1, module.bn1 = _fold(module.conv1, module.bn1, 0), nn.Identity()
            module.conv2, module.bn2 = _fold(module.conv2, module.bn2, 0), nn.Identity()
            module.relu_inplace = True
        elif isinstance(module, DecoderBlock):
            module.conv1, module.bn1 = _fold(module.conv1, module.bn1, 1), nn.Identity()
            module.relu_inplace = True
    if all(p.device.type == "cpu" for p in frozen.parameters()):
        frozen = frozen.to(memory_format=torch.channels_last)
    return frozen.requires_grad_(False)
