import museval
import numpy as np
import pandas as pd
import pytest

from apt_uss.evaluation.metrics import bss_sdr, is_silent, median_sdr_by_class, per_track_medians, summarise

SR = 32000


def _museval_sdr(ref, est):
    """The reference protocol: BSS Eval v4 with the whole segment as one window, one mono source."""
    n = len(ref)
    return museval.evaluate(ref[None, :, None], est[None, :, None], win=n, hop=n)[0][0, 0]


def _delayed(x, shift):
    """x delayed by ``shift`` samples, zeros shifted in, same length (a latency error)."""
    return np.concatenate([np.zeros(shift), x[:-shift]])


def _filtered_noisy(ref, rng):
    """Filtering distortion (a short random FIR), a gain error and additive noise."""
    fir = np.r_[1.0, np.zeros(4)] + 0.3 * rng.standard_normal(5)
    est = rng.uniform(0.3, 1.5) * np.convolve(ref, fir)[: len(ref)]
    return est + rng.uniform(0.05, 1.0) * rng.standard_normal(len(ref))


def _adversarial_cases():
    """(name, reference, estimate) pairs built to stress the closed form against museval.

    Delays beyond museval's 512-tap distortion filter (1000) and non-linear errors
    (clipping) are where a difference between the two would show, if there were one.
    """
    rng = np.random.default_rng(1234)
    ref = rng.standard_normal(SR)
    peak = np.abs(ref).max()
    burst = np.zeros(SR)
    burst[20000:20400] = rng.standard_normal(400)  # 12.5 ms of sound in 1 s of silence
    cases = [(f"gain {g}", ref, g * ref) for g in (0.1, 3.0, -1.0)]
    cases += [(f"delay {s}", ref, _delayed(ref, s)) for s in (1, 100, 1000)]
    cases += [(f"circular shift {s}", ref, np.roll(ref, s)) for s in (1, 1000)]
    cases += [(f"clipped at {f} of peak", ref, np.clip(ref, -f * peak, f * peak)) for f in (0.1, 0.5)]
    cases += [
        ("filtered + noise", ref, _filtered_noisy(ref, rng)),
        ("quiet noise only", ref, 1e-6 * rng.standard_normal(SR)),
        ("burst, noisy estimate", burst, burst + 0.05 * rng.standard_normal(SR)),
        ("burst, estimate misses it", burst, 0.01 * rng.standard_normal(SR)),
        ("near perfect", ref, ref + 1e-6 * rng.standard_normal(SR)),
    ]
    return cases


CASES = _adversarial_cases()

# museval v4 with the whole segment as one window counts the whole error, so for one mono source
# its SDR is the closed form 10 log10(|s|^2 / |s - s_hat|^2), an identity evaluated in float64 on
# both sides (measured differences: at most 2e-15 dB, on every case here). 1e-9 dB fails on any
# real difference in the formula (a projection, a distortion filter) and holds on any CPU.
AGREE_DB = 1e-9


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("n", [32000, 64000, 32001])  # 1 s, 2 s, and an odd length
def test_bss_sdr_agrees_with_museval_on_random_signals(seed, n):
    rng = np.random.default_rng(seed)
    ref = rng.standard_normal(n)
    est = _filtered_noisy(ref, rng)
    ours, theirs = bss_sdr(ref, est), _museval_sdr(ref, est)
    assert np.isfinite(ours) and abs(ours - theirs) < AGREE_DB
    assert -20 < ours < 40  # a real value, not a degenerate one that agrees trivially


@pytest.mark.parametrize("name, ref, est", CASES, ids=[c[0] for c in CASES])
def test_bss_sdr_agrees_with_museval_on_adversarial_signals(name, ref, est):
    ours, theirs = bss_sdr(ref, est), _museval_sdr(ref, est)
    assert np.isfinite(ours) and np.isfinite(theirs)
    assert abs(ours - theirs) < AGREE_DB, name


def test_adversarial_cases_have_their_known_values():
    """Closed-form values, so the agreement above is with the right numbers and not only mutual."""
    sdr = {name: bss_sdr(ref, est) for name, ref, est in CASES}
    assert sdr["gain 0.1"] == pytest.approx(-10 * np.log10(0.81))  # |s|^2 / |0.9 s|^2
    assert sdr["gain 3.0"] == pytest.approx(-10 * np.log10(4))
    assert sdr["gain -1.0"] == pytest.approx(-10 * np.log10(4))
    # white noise shifted by any lag is (nearly) uncorrelated with itself: |s - s'|^2 ~ 2 |s|^2
    assert sdr["delay 1"] == pytest.approx(-3.01, abs=0.1) and sdr["delay 1000"] == pytest.approx(-3.01, abs=0.2)
    assert sdr["quiet noise only"] == pytest.approx(0.0, abs=1e-6)
    assert sdr["near perfect"] == pytest.approx(120.0, abs=0.5)  # 1e-6 relative error
    assert sdr["clipped at 0.5 of peak"] > sdr["clipped at 0.1 of peak"] > 0


def test_float32_signals_agree_with_museval():
    # The separator's estimates are float32.
    rng = np.random.default_rng(7)
    ref = (0.1 * rng.standard_normal(SR)).astype(np.float32)
    est = (ref + 0.05 * rng.standard_normal(SR)).astype(np.float32)
    assert abs(bss_sdr(ref, est) - _museval_sdr(ref, est)) < AGREE_DB


def test_longer_estimate_is_cut_to_the_reference_as_museval_does():
    rng = np.random.default_rng(3)
    ref = rng.standard_normal(SR)
    est = np.r_[ref + 0.3 * rng.standard_normal(SR), 100 * rng.standard_normal(500)]  # loud tail past the end
    ours = bss_sdr(ref, est)
    assert ours == pytest.approx(bss_sdr(ref, est[:SR])) and ours > 5
    assert abs(ours - _museval_sdr(ref, est[:SR])) < AGREE_DB


def test_silent_reference_raises_like_museval():
    x = np.random.default_rng(0).standard_normal(1000)
    with pytest.raises(ValueError, match="silent"):
        bss_sdr(np.zeros(1000), x)
    with pytest.raises(ValueError, match="reference sources"):
        _museval_sdr(np.zeros(1000), x)


def test_silent_estimate_scores_zero_db_where_museval_refuses():
    """We differ from museval on purpose: a separator that outputs silence has failed and must
    count in the medians (at 0 dB, the limit of the SDR as the estimate fades out), not
    drop out of them as museval's ValueError would make it."""
    ref = np.random.default_rng(0).standard_normal(SR)
    assert bss_sdr(ref, np.zeros(SR)) == 0.0
    assert bss_sdr(ref, np.zeros(SR, np.float32)) == 0.0
    with pytest.raises(ValueError, match="estimated sources"):
        _museval_sdr(ref, np.zeros(SR))
    # and the limit is continuous: a fading estimate approaches 0 dB in both
    fading = 1e-9 * ref
    assert bss_sdr(ref, fading) == pytest.approx(0.0, abs=1e-6)
    assert _museval_sdr(ref, fading) == pytest.approx(0.0, abs=1e-6)


def test_perfect_estimate_scores_a_finite_ceiling_where_museval_gives_infinity():
    ref = np.random.default_rng(0).standard_normal(SR)
    assert bss_sdr(ref, ref.copy()) == 200.0
    assert _museval_sdr(ref, ref.copy()) == np.inf


def test_is_silent():
    assert is_silent(np.zeros(10)) and is_silent(np.zeros(10, np.float32))
    assert not is_silent(np.r_[np.zeros(9), 1e-30])


def _units():
    table = pd.DataFrame({
        "target_class": ["a", "a", "a", "b", "b"],
        "sdr_baseline": [1.0, 2.0, 9.0, 4.0, 6.0],
        "sdr_apt": [3.0, 4.0, 5.0, 3.0, 5.0],
        "sdr_mixture": [0.0, -1.0, 1.0, 2.0, 0.0],
    })
    table["sdri_baseline"] = table["sdr_baseline"] - table["sdr_mixture"]
    table["sdri_apt"] = table["sdr_apt"] - table["sdr_mixture"]
    return table


def test_median_sdr_by_class():
    per_class = median_sdr_by_class(_units())
    assert list(per_class["target_class"]) == ["a", "b"]  # sorted by gain, largest first
    row = per_class.set_index("target_class")
    assert row.loc["a", "n_mixtures"] == 3 and row.loc["b", "n_mixtures"] == 2
    assert row.loc["a", "sdr_baseline_median"] == 2.0 and row.loc["a", "sdr_apt_median"] == 4.0
    assert row.loc["a", "sdr_gain"] == pytest.approx(2.0) and row.loc["b", "sdr_gain"] == pytest.approx(-1.0)
    assert row.loc["a", "sdri_baseline_median"] == 3.0 and row.loc["a", "sdri_apt_median"] == 4.0
    assert row.loc["b", "sdri_baseline_median"] == 4.0 and row.loc["b", "sdri_apt_median"] == 3.0
    assert "sdr_oracle_mask_median" not in per_class.columns  # tables scored before the oracle column


def test_oracle_mask_medians_when_scored():
    units = _units().assign(sdr_oracle_mask=[10.0, 12.0, 30.0, 8.0, 9.0])
    per_class = median_sdr_by_class(units).set_index("target_class")
    assert per_class.loc["a", "sdr_oracle_mask_median"] == 12.0 and per_class.loc["b", "sdr_oracle_mask_median"] == 8.5
    assert summarise(units, per_class.reset_index())["sdr_oracle_mask_pooled_median"] == 10.0


def test_summary():
    units = _units()
    s = summarise(units, median_sdr_by_class(units), counts={"n_skipped_silent_reference": 2})
    assert s["sdr_baseline_pooled_median"] == 4.0 and s["sdr_apt_pooled_median"] == 4.0
    assert s["sdr_baseline_pooled_mean"] == pytest.approx(4.4) and s["sdr_apt_pooled_mean"] == pytest.approx(4.0)
    assert s["sdr_gain_pooled_mean"] == pytest.approx(-0.4) and s["sdr_gain_pooled_median"] == 0.0
    assert s["sdr_baseline_class_mean"] == pytest.approx(3.5) and s["sdr_apt_class_mean"] == pytest.approx(4.0)
    assert s["sdr_gain_class_mean"] == pytest.approx(0.5)
    assert s["sdri_baseline_pooled_median"] == 3.0 and s["sdri_apt_pooled_median"] == 4.0
    assert s["sdr_mixture_pooled_median"] == 0.0
    assert s["classes_improved"] == 1 and s["n_classes"] == 2 and s["n_mixtures"] == 5
    assert s["n_skipped_silent_reference"] == 2
    assert "n_skipped_silent_reference" not in summarise(units, median_sdr_by_class(units))


def test_per_track_medians_keeps_sdri():
    units = _units().assign(track=["t1", "t1", "t2", "t3", "t3"])
    tracks = per_track_medians(units).set_index(["target_class", "track"])
    assert tracks.loc[("a", "t1"), "sdr_baseline"] == 1.5 and tracks.loc[("a", "t1"), "sdri_apt"] == 4.0
    assert len(tracks) == 3
    flat = _units()
    assert per_track_medians(flat) is flat  # tables without tracks are already per unit


def test_short_estimate_is_zero_padded_like_museval():
    rng = np.random.default_rng(7)
    ref = rng.standard_normal(32000)
    est = ref[:30000] + 0.1 * rng.standard_normal(30000)
    padded = np.concatenate([est, np.zeros(2000)])
    assert abs(bss_sdr(ref, est) - _museval_sdr(ref, padded)) < AGREE_DB


def test_misshapen_or_non_finite_estimates_are_refused():
    ref = np.random.default_rng(8).standard_normal(1000)
    with pytest.raises(ValueError, match="1-D"):
        bss_sdr(ref, ref[:, None])
    bad = ref.copy()
    bad[10] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        bss_sdr(ref, bad)


def test_scores_are_capped_so_near_perfect_never_outranks_perfect():
    ref = np.random.default_rng(9).standard_normal(1000)
    assert bss_sdr(ref, ref + 1e-12 * np.random.default_rng(10).standard_normal(1000)) == bss_sdr(ref, ref) == 200.0


# SI-SDR (Le Roux et al. 2019) ----------------------------------------------------------------------------

def _si_sdr_by_least_squares(reference, estimate):
    """The definition computed another way: the target is the least-squares projection of the estimate on
    the reference line."""
    ref = reference.astype(np.float64)[:, None]
    est = estimate.astype(np.float64)
    scale = np.linalg.lstsq(ref, est, rcond=None)[0]
    target = (ref @ scale).ravel()
    return 10 * np.log10(np.sum(target**2) / np.sum((est - target) ** 2))


def test_si_sdr_agrees_with_its_definition_and_ignores_scale():
    from apt_uss.evaluation.metrics import si_sdr

    rng = np.random.default_rng(11)
    for _ in range(20):
        ref = rng.standard_normal(8000).astype(np.float32)
        est = (rng.uniform(0.1, 3) * ref + rng.uniform(0.01, 2) * rng.standard_normal(8000)).astype(np.float32)
        # float64 arithmetic on both sides: the two routes differ by rounding only
        assert si_sdr(ref, est) == pytest.approx(_si_sdr_by_least_squares(ref, est), abs=1e-9)
        wide = est.astype(np.float64)  # scaled in float64, so the two inputs differ by the scale alone
        assert si_sdr(ref, 5.0 * wide) == pytest.approx(si_sdr(ref, wide), abs=1e-9)  # scale-invariant
    ref = rng.standard_normal(4000)
    noise = rng.standard_normal(4000)
    noise -= np.dot(noise, ref) / np.dot(ref, ref) * ref  # orthogonal to the reference
    noise *= np.sqrt(np.sum(ref**2) / np.sum(noise**2)) / 10  # 20 dB below it
    assert si_sdr(ref, ref + noise) == pytest.approx(20.0, abs=1e-9)
    assert si_sdr(ref, -2.0 * ref) == 200.0  # any non-zero scale of the reference is perfect


def test_si_sdr_of_a_silent_estimate_is_nan_and_a_silent_reference_is_refused():
    from apt_uss.evaluation.metrics import si_sdr

    assert np.isnan(si_sdr(np.ones(100), np.zeros(100)))
    with pytest.raises(ValueError, match="reference is silent"):
        si_sdr(np.zeros(100), np.ones(100))
