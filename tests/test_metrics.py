import museval
import numpy as np
import pandas as pd
import pytest

from apt_uss.metrics import bss_sdr, median_sdr_by_class, plain_sdr, summarise


def _museval_sdr(ref, est):
    n = len(ref)
    return museval.evaluate(ref[None, :, None], est[None, :, None], win=n, hop=n)[0][0, 0]


@pytest.mark.parametrize("seed", range(5))
def test_bss_sdr_agrees_with_museval_whole_segment(seed):
    rng = np.random.default_rng(seed)
    ref = rng.standard_normal(32000)
    noise = rng.standard_normal(32000)
    # an estimate with filtering distortion, interference and a gain error
    est = rng.uniform(0.3, 1.5) * np.convolve(ref, rng.standard_normal(5) * 0.3 + [1, 0, 0, 0, 0])[:32000]
    est = est + rng.uniform(0.05, 1.0) * noise
    assert abs(bss_sdr(ref, est) - _museval_sdr(ref, est)) < 0.01


def test_silent_reference_or_estimate_is_skipped():
    x = np.ones(100)
    assert np.isnan(bss_sdr(np.zeros(100), x)) and np.isnan(bss_sdr(x, np.zeros(100)))


def test_plain_sdr_known_value():
    ref = np.ones(100)
    assert plain_sdr(ref, 0.5 * ref) == pytest.approx(10 * np.log10(4))


def test_per_class_medians_and_summary():
    table = pd.DataFrame({
        "target_class": ["a", "a", "a", "b", "b"],
        "sdr_baseline": [1.0, 2.0, 9.0, 4.0, 6.0],
        "sdr_apt": [3.0, 4.0, 5.0, 3.0, 5.0],
        "sdr_plain_mixture": [0.0] * 5,
    })
    table["sdr_plain_baseline"] = table["sdr_baseline"]
    table["sdr_plain_apt"] = table["sdr_apt"]
    per_class = median_sdr_by_class(table).set_index("target_class")
    assert per_class.loc["a", "sdr_baseline_median"] == 2.0 and per_class.loc["a", "sdr_apt_median"] == 4.0
    assert per_class.loc["b", "sdr_gain"] == pytest.approx(-1.0)
    s = summarise(table, median_sdr_by_class(table))
    assert s["sdr_baseline_pooled_median"] == 4.0 and s["sdr_apt_pooled_median"] == 4.0
    assert s["sdr_baseline_class_mean"] == pytest.approx(3.5) and s["sdr_apt_class_mean"] == pytest.approx(4.0)
    assert s["sdr_gain_class_mean"] == pytest.approx(0.5)
    assert s["classes_improved"] == 1 and s["n_classes"] == 2 and s["n_mixtures"] == 5
