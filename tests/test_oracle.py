import numpy as np
import pytest

from apt_uss.evaluation.metrics import bss_sdr
from apt_uss.evaluation.oracle import oracle_mask_estimate, oracle_mask_sdr

SR = 16000


def _tone(freq, seconds=1.0, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_a_mixture_that_is_only_the_target_is_recovered_exactly():
    target = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1
    estimate = oracle_mask_estimate(target, target, 512, 256)
    # The oracle works in float64: mask 1 and STFT/iSTFT round trip are exact up to float64
    # rounding (measured 2e-16 on a 0.4 peak), so 1e-12 fails on any real loss of signal.
    np.testing.assert_allclose(estimate, target, rtol=0, atol=1e-12)
    assert oracle_mask_sdr(target, target, 512, 256) > 100


def test_sources_apart_in_frequency_mask_apart_and_overlapping_noise_does_not():
    low, high = _tone(300.0), _tone(5000.0)
    assert oracle_mask_sdr(low + high, low, 512, 256) > 25  # a 0 dB mixture, bins far apart
    rng = np.random.default_rng(1)
    a, b = (0.1 * rng.standard_normal((2, SR))).astype(np.float32)
    overlapping = oracle_mask_sdr(a + b, a, 512, 256)
    # white noise on white noise: every bin is a coin toss, the mask can only split it
    assert bss_sdr(a, a + b) + 2 < overlapping < 12


def test_the_oracle_beats_the_unprocessed_and_halved_mixture():
    rng = np.random.default_rng(2)
    target = _tone(440.0) * (np.arange(SR) < SR // 2)
    interferer = (0.05 * rng.standard_normal(SR)).astype(np.float32)
    mixture = (target + interferer).astype(np.float32)
    oracle = oracle_mask_sdr(mixture, target, 512, 256)
    assert oracle > bss_sdr(target, mixture) + 6
    assert oracle > bss_sdr(target, 0.5 * mixture) + 6


def test_signals_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="one length"):
        oracle_mask_estimate(np.zeros(100, np.float32), np.zeros(99, np.float32), 64, 32)
