import copy

import numpy as np
import pytest
import torch

from apt_uss.models import load_backbone
from apt_uss.models.frozen_separator import frozen_separator


@pytest.fixture(params=["tiny", "demo"])
def separator_with_statistics(request):
    """A separator whose BatchNorms have non-trivial statistics and affine terms, as a trained one has."""
    sep = load_backbone(request.param).separator.eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in sep.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.2, generator=g)
                m.running_var.uniform_(0.3, 3.0, generator=g)
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0, 0.2, generator=g)
    return sep


def _estimate_and_prompt_grad(separator, wav, prompts, target):
    prompts = torch.nn.Parameter(prompts.clone())
    estimate = separator(wav, prompts)["wav"]
    torch.nn.functional.l1_loss(estimate, target).backward()
    return estimate.detach(), prompts.grad


def test_the_folded_separator_computes_the_same_estimates_and_prompt_gradients(separator_with_statistics):
    # In float64, so that what is compared is the fold's algebra and not float32's reordered sums
    # (with the trained demo weights those reach 1.2e-5 on a 0.1-scale signal).
    sep = separator_with_statistics.double()
    dim = sep.encoder_block1.conv_block.emb1.in_features
    g = torch.Generator().manual_seed(1)
    wav, target = 0.1 * torch.randn(3, 32000, generator=g), 0.1 * torch.randn(3, 32000, generator=g)
    prompts = torch.randn(3, dim, generator=g)
    wav, target, prompts = wav.double(), target.double(), prompts.double()
    want_est, want_grad = _estimate_and_prompt_grad(copy.deepcopy(sep).requires_grad_(False), wav, prompts, target)
    got_est, got_grad = _estimate_and_prompt_grad(frozen_separator(sep), wav, prompts, target)
    assert not torch.equal(want_grad, torch.zeros_like(want_grad))
    torch.testing.assert_close(got_est, want_est, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(got_grad, want_grad, rtol=1e-3, atol=1e-9)


def test_folding_leaves_the_callers_separator_alone_and_freezes_the_copy(separator_with_statistics):
    sep = separator_with_statistics.requires_grad_(True)
    before = {k: v.clone() for k, v in sep.state_dict().items()}
    folded = frozen_separator(sep)
    assert all(torch.equal(before[k], v) for k, v in sep.state_dict().items())
    assert all(p.requires_grad for p in sep.parameters())
    assert not any(p.requires_grad for p in folded.parameters())
    assert {p.dtype for p in folded.parameters()} == {torch.float32}  # the fold keeps the model's precision
    # Only the input BatchNorm (over frequency bins, before any convolution) is left.
    assert [n for n, m in folded.named_modules() if isinstance(m, torch.nn.BatchNorm2d)] == ["bn0"]
    assert not folded.training


def test_a_separator_in_train_mode_is_folded_with_its_running_statistics(separator_with_statistics):
    sep = separator_with_statistics
    wav = 0.1 * torch.randn(2, 16000, generator=torch.Generator().manual_seed(2))
    prompts = torch.zeros(2, sep.encoder_block1.conv_block.emb1.in_features)
    with torch.no_grad():
        want = sep.eval()(wav, prompts)["wav"]
        got = frozen_separator(sep.train())(wav, prompts)["wav"]
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-6)
