"""The losses prompt tuning minimises: the paper's L1 and the demo's capped negative SNR."""

import math

import pytest
import torch

from apt_uss.errors import AptUssError
from apt_uss.method.losses import SNR_CAP_DB, negative_snr, separation_loss

# The losses run in float32, as tuning does. Their sums over at most 64,000 samples are
# accumulated in an order the CPU's kernels choose, so a value carries a relative rounding error
# of about eps32 * log2(n) ~ 2e-6; the relative tolerances below (1e-5 and looser) sit above that,
# and each is far below the effect asserted (dB-level differences, or exact zeros).


def test_l1_is_the_mean_absolute_waveform_error():
    target = torch.tensor([[1.0, -1.0, 0.5, 0.0]])
    estimate = torch.tensor([[0.5, -1.0, 0.0, 0.25]])
    assert separation_loss(estimate, target, "l1").item() == pytest.approx((0.5 + 0 + 0.5 + 0.25) / 4)


def test_snr_is_minus_the_db_ratio_of_target_to_error_energy():
    target = torch.ones(2, 100)
    # Error energy 1/10 and 1/100 of the target's: SNRs of 10 and 20 dB (plus the cap's small floor).
    estimate = torch.stack([target[0] - math.sqrt(0.1), target[1] - math.sqrt(0.01)])
    floor = 10 ** (-SNR_CAP_DB / 10)
    expected = [10 * math.log10(0.1 + floor), 10 * math.log10(0.01 + floor)]
    assert separation_loss(estimate, target, "snr").item() == pytest.approx(sum(expected) / 2, rel=1e-4)


def test_snr_does_not_care_how_loud_the_target_is_but_l1_does():
    """Why the demo tunes on it: a missed quiet (sparse) target costs as much as a missed loud one."""
    loud, quiet = torch.ones(1, 64), torch.full((1, 64), 0.01)
    silence = torch.zeros(1, 64)
    # 1e-4 dB: float32 rounding of two ratios (~1e-6 dB); a loudness-dependent loss differs by 40 dB here.
    assert negative_snr(silence, loud).item() == pytest.approx(negative_snr(silence, quiet).item(), abs=1e-4)
    assert separation_loss(silence, quiet, "l1").item() < separation_loss(silence, loud, "l1").item() / 50


def test_snr_is_capped_for_a_perfect_estimate():
    target = torch.randn(3, 256)
    estimate = target.clone().requires_grad_(True)
    loss = negative_snr(estimate, target)
    assert loss.item() == pytest.approx(-SNR_CAP_DB, abs=1e-3)  # the cap itself; float32 moves it by ~1e-5 dB
    loss.backward()
    assert torch.isfinite(estimate.grad).all()


@pytest.mark.parametrize("silence", [0.0, 1e-6])
def test_a_silent_target_is_left_out_and_keeps_the_loss_finite(silence):
    """A crop of digital silence (ESC-50 pads its clips with it) has no SNR: it must not push the prompts."""
    target = torch.randn(3, 64000)
    target[1] = silence
    estimate = (target + torch.randn(3, 64000)).requires_grad_(True)  # an error far above the silent target
    loss = negative_snr(estimate, target)
    alone = negative_snr(estimate[[0, 2]].detach(), target[[0, 2]])
    assert torch.isfinite(loss) and loss.item() == pytest.approx(alone.item(), rel=1e-5)
    loss.backward()
    assert torch.isfinite(estimate.grad).all() and torch.equal(estimate.grad[1], torch.zeros(64000))
    all_silent = negative_snr(torch.ones(2, 100), torch.zeros(2, 100))
    assert all_silent.item() == 0.0


def test_an_unknown_loss_is_refused_by_name():
    with pytest.raises(AptUssError, match="loss_function='mse' is unknown: allowed are l1, snr"):
        separation_loss(torch.zeros(1, 4), torch.zeros(1, 4), "mse")
