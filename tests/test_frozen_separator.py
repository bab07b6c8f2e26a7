import copy

import pytest
import torch

from apt_uss.models.backbone import load_backbone
from apt_uss.models.frozen_separator import frozen_separator
from apt_uss.models.separator import CondConvBlock, DecoderBlock


@pytest.fixture(params=["tiny", "demo"])
def separator_with_statistics(request):
    """A separator whose BatchNorms have non-trivial statistics and affine terms: the shipped demo
    weights' own, and random ones for the untrained tiny config (whose BatchNorms are identities).
    (Random statistics on the trained demo weights saturate its mask: a 3e-26 prompt gradient, whose
    float32 error is noise, not a measure of the fold.)"""
    sep = load_backbone(request.param).separator.eval()
    if request.param == "demo":
        return sep
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


# Float64 tolerances for the fold's algebra. Folding reorders a few roundings per layer; in
# float64 (eps 2.2e-16) that stays near 1e-13 of a 0.3-peak estimate over the U-Net's ~30 layers
# of up to 18k-term sums (measured: 3e-14 on the demo separator, any kernel), and near 1e-15 of
# the prompt gradient's 3e-4 peak. 1e-9 and 1e-12 leave four orders of margin above that and sit
# six orders below what a wrong fold (a missed shift or scale, an unfolded BatchNorm) changes.
FOLD_ATOL_ESTIMATE_F64 = 1e-9
FOLD_ATOL_GRAD_F64 = 1e-12


def _problem(sep, batch=3, samples=32000, seed=1, dtype=torch.float64):
    dim = sep.encoder_block1.conv_block.emb1.in_features
    g = torch.Generator().manual_seed(seed)
    wav, target = 0.1 * torch.randn(batch, samples, generator=g), 0.1 * torch.randn(batch, samples, generator=g)
    prompts = torch.randn(batch, dim, generator=g)
    return wav.to(dtype), target.to(dtype), prompts.to(dtype)


def test_the_folded_separator_computes_the_same_estimates_and_prompt_gradients(separator_with_statistics):
    # In float64: what is compared is the fold's algebra, not which float32 kernels the CPU picks.
    sep = separator_with_statistics.double()
    wav, target, prompts = _problem(sep)
    want_est, want_grad = _estimate_and_prompt_grad(copy.deepcopy(sep).requires_grad_(False), wav, prompts, target)
    got_est, got_grad = _estimate_and_prompt_grad(frozen_separator(sep), wav, prompts, target)
    assert not torch.equal(want_grad, torch.zeros_like(want_grad))
    torch.testing.assert_close(got_est, want_est, rtol=0, atol=FOLD_ATOL_ESTIMATE_F64)
    torch.testing.assert_close(got_grad, want_grad, rtol=0, atol=FOLD_ATOL_GRAD_F64)


def _rms(x: torch.Tensor) -> float:
    return x.double().pow(2).mean().sqrt().item()


def test_a_float32_fold_adds_no_more_error_than_float32_evaluation_itself(separator_with_statistics):
    """The pipeline runs the fold in float32. Against the float64 result, its error is float32's
    own rounding, which depends on the CPU's kernels (AVX2, AVX-512, NEON): so the bound is not a
    fixed number but the unfolded float32 model's error on the same machine. Folding rounds each
    weight once more (relative 6e-8, like any other product), so its error stays near that of the
    unfolded model (measured ratios 0.6-1.1); twice it would mean the fold loses precision.

    The folded copy also runs channels-last on CPU, where oneDNN sums in another order. The
    unfolded model's error is taken in both layouts and the larger one bounds the fold's: on the
    demo weights the prompt gradient's float32 error moves 40x between layouts with the CPU's
    kernels (measured 2.5e-11 to 1.0e-9 of an 8.6e-5 gradient), far more than folding moves it."""
    sep = separator_with_statistics
    wav, target, prompts = _problem(sep, dtype=torch.float32)
    sep64 = copy.deepcopy(sep).double().requires_grad_(False)
    ref_est, ref_grad = _estimate_and_prompt_grad(sep64, wav.double(), prompts.double(), target.double())
    plain = copy.deepcopy(sep).requires_grad_(False)
    plain_est, plain_grad = _estimate_and_prompt_grad(plain, wav, prompts, target)
    cl_est, cl_grad = _estimate_and_prompt_grad(plain.to(memory_format=torch.channels_last), wav, prompts, target)
    fold_est, fold_grad = _estimate_and_prompt_grad(frozen_separator(sep), wav, prompts, target)
    assert fold_est.dtype == torch.float32 and fold_grad.dtype == torch.float32
    assert _rms(fold_est - ref_est) <= 2 * max(_rms(plain_est - ref_est), _rms(cl_est - ref_est))
    assert _rms(fold_grad - ref_grad) <= 2 * max(_rms(plain_grad - ref_grad), _rms(cl_grad - ref_grad))
    # and float32 itself is far from mattering: under 1e-4 of the signal's RMS
    assert _rms(plain_est - ref_est) < 1e-4 * _rms(ref_est)


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
    # On CPU the copy computes channels-last (oneDNN's own layout: docs/performance.md), the caller's model does not.
    convs = [m for m in folded.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)
    assert sep.encoder_block1.conv_block.conv2.weight.is_contiguous()
    # The copy's ReLUs run in place (its convolutions' outputs are needed by nothing else); the caller's do not.
    blocks = (CondConvBlock, DecoderBlock)
    assert all(m.relu_inplace for m in folded.modules() if isinstance(m, blocks))
    assert not any(m.relu_inplace for m in sep.modules() if isinstance(m, blocks))


def test_a_separator_in_train_mode_is_folded_with_its_running_statistics(separator_with_statistics):
    # Float64, tolerance as above: batch statistics instead of the running ones would change the
    # estimate at the 1e-2 level, a rounding difference stays near 1e-13.
    sep = separator_with_statistics.double()
    wav, _, _ = _problem(sep, batch=2, samples=16000, seed=2)
    prompts = torch.zeros(2, sep.encoder_block1.conv_block.emb1.in_features, dtype=torch.float64)
    with torch.no_grad():
        want = sep.eval()(wav, prompts)["wav"]
        batch_statistics = copy.deepcopy(sep).train()(wav, prompts)["wav"]
        got = frozen_separator(sep.train())(wav, prompts)["wav"]
    torch.testing.assert_close(got, want, rtol=0, atol=FOLD_ATOL_ESTIMATE_F64)
    assert (batch_statistics - want).abs().max() > 1e3 * FOLD_ATOL_ESTIMATE_F64  # the test can tell them apart
