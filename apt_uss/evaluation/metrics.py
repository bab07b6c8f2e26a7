"""Signal-to-distortion ratios and the tables that summarise them.

One SDR serves as both of the definitions in use: for one mono source, BSS Eval v4's
image SDR (museval, ``win = hop = len``, as the backbone's authors compute it) is
10 log10(|s|^2 / |s - s_hat|^2), the plain SDR of uss and AudioSep. The distortion
filter only splits the error into its ISR/SAR parts; it removes none of it from the SDR.
``tests/test_metrics.py`` checks this against museval itself on random and adversarial
signals, so the closed form is used here, without museval's per-call cost.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SDR_DEFINITION = "bss_eval_v4_whole_segment (== plain SDR for one mono source)"
SYSTEMS = ("baseline", "apt")
# The scores of a test mixture (SDR, its improvement over the mixture's own SDR, and the scale-invariant pair,
# Le Roux et al. 2019) and the statistics each is summarised by: the median and mean over all mixtures (the paper's
# CSV rows avg(sample) use the median) and the mean of the per-class medians (avg(class)).
SCORES = ("sdr", "sdri", "si_sdr", "si_sdri")
STATISTICS = ("pooled_median", "pooled_mean", "class_mean")
SDR_CEILING = 200.0  # dB; beyond float32 resolution, so any higher figure is rounding noise
ORACLE = "sdr_oracle_mask"  # per-mixture ceiling of the separator's output kind (apt_uss.evaluation.oracle)


def is_silent(signal: np.ndarray) -> bool:
    return not np.any(signal)


def _aligned(reference: np.ndarray, estimate: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Both signals in float64, the estimate cut or zero-padded to the reference's length; refuses what
    no score can be given for."""
    if reference.ndim != 1 or estimate.ndim != 1:
        raise ValueError(f"{metric} takes 1-D signals, got shapes {reference.shape} and {estimate.shape}")
    if is_silent(reference):
        raise ValueError(f"{metric}: the reference is silent; skip the segment")
    if not np.all(np.isfinite(estimate)):
        raise ValueError(f"{metric}: the estimate contains NaN or infinity (a diverged model?)")
    ref = reference.astype(np.float64)
    est = np.zeros_like(ref)
    n = min(len(ref), len(estimate))
    est[:n] = estimate[:n]
    return ref, est


def bss_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """SDR in dB of the 1-D ``estimate`` against the 1-D ``reference``.

    The estimate is cut or zero-padded to the reference's length (as museval pads). The
    reference must not be silent (callers skip and count those segments, as the reference
    protocol does). A silent estimate scores 0 dB, the limit of the SDR as the estimate
    fades out; museval refuses such an estimate instead of scoring it. Scores are capped at
    ``SDR_CEILING`` so a (near-)perfect estimate never puts infinity in a table.
    """
    ref, est = _aligned(reference, estimate, "bss_sdr")
    num, den = np.sum(ref**2), np.sum((ref - est) ** 2)
    if den == 0:
        return SDR_CEILING
    return float(min(10 * np.log10(num / den), SDR_CEILING))


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SDR in dB (Le Roux et al., "SDR - half-baked or well done?", ICASSP 2019).

    The reference scaled to best fit the estimate, ``a s`` with ``a = <s_hat, s> / |s|^2``, is the
    target; everything else is error: 10 log10(|a s|^2 / |a s - s_hat|^2). Lengths are matched as in
    ``bss_sdr``. A silent estimate has no scale and no SI-SDR: it gives NaN, which the tables' medians
    and means leave out (the evaluation counts silent estimates). Capped at +-``SDR_CEILING``.
    """
    ref, est = _aligned(reference, estimate, "si_sdr")
    if not np.any(est):
        return float("nan")
    target = (np.dot(est, ref) / np.dot(ref, ref)) * ref
    num, den = np.sum(target**2), np.sum((target - est) ** 2)
    if den == 0:
        return SDR_CEILING
    if num == 0:
        return -SDR_CEILING
    return float(np.clip(10 * np.log10(num / den), -SDR_CEILING, SDR_CEILING))


# Per-mixture score columns a segment table's medians and the class tables carry, by prefix.
SCORE_PREFIXES = ("sdr_", "sdri_", "si_sdr_", "si_sdri_")


def per_track_medians(per_mixture: pd.DataFrame) -> pd.DataFrame:
    """For segment-wise tables (MUSDB18), the median over each track's segments per stem; else unchanged.

    This is the reference protocol's first step; medians over tracks follow.
    """
    if "track" not in per_mixture.columns:
        return per_mixture
    sdr = [c for c in per_mixture.columns if c.startswith(SCORE_PREFIXES)]
    return per_mixture.groupby(["target_class", "track"], sort=True)[sdr].median().reset_index()


def median_sdr_by_class(units: pd.DataFrame) -> pd.DataFrame:
    """Median SDR and SDRi of each target class for baseline and APT, and the gain, sorted by gain;
    also the oracle mask's median where the evaluations scored it."""
    grouped = units.groupby("target_class", sort=True)
    table = pd.DataFrame({"n_mixtures": grouped.size()})
    for system in SYSTEMS:
        table[f"sdr_{system}_median"] = grouped[f"sdr_{system}"].median()
    table["sdr_gain"] = table["sdr_apt_median"] - table["sdr_baseline_median"]
    for system in SYSTEMS:
        table[f"sdri_{system}_median"] = grouped[f"sdri_{system}"].median()
    for system in SYSTEMS:
        if f"si_sdr_{system}" in units.columns:
            table[f"si_sdr_{system}_median"] = grouped[f"si_sdr_{system}"].median()
            table[f"si_sdri_{system}_median"] = grouped[f"si_sdri_{system}"].median()
    if ORACLE in units.columns:
        table[f"{ORACLE}_median"] = grouped[ORACLE].median()
    return table.reset_index().sort_values("sdr_gain", ascending=False, ignore_index=True)


def summarise(units: pd.DataFrame, per_class: pd.DataFrame, counts: dict | None = None) -> dict[str, float]:
    """Headline numbers under stable names.

    ``sdr_<system>_pooled_median`` compares with the paper's "pooled" 6.44/8.50 (median over
    all test mixtures) and ``sdr_<system>_class_mean`` with its 5.47/7.89 (mean of the
    per-class medians). ``counts`` adds bookkeeping such as skipped silent references.
    """
    out = {}
    for system in SYSTEMS:
        # SDR, SDRi, and where scored the scale-invariant SDR and its improvement, the same three ways
        for score in SCORES:
            if f"{score}_{system}" in units.columns:
                out[f"{score}_{system}_pooled_median"] = float(units[f"{score}_{system}"].median())
                out[f"{score}_{system}_pooled_mean"] = float(units[f"{score}_{system}"].mean())
                out[f"{score}_{system}_class_mean"] = float(per_class[f"{score}_{system}_median"].mean())
    out["sdr_mixture_pooled_median"] = float(units["sdr_mixture"].median())
    if "si_sdr_mixture" in units.columns:
        out["si_sdr_mixture_pooled_median"] = float(units["si_sdr_mixture"].median())
    if ORACLE in units.columns:
        out[f"{ORACLE}_pooled_median"] = float(units[ORACLE].median())
    for score in SCORES:  # APT - baseline of every statistic both systems have
        for statistic in STATISTICS:
            apt, baseline = f"{score}_apt_{statistic}", f"{score}_baseline_{statistic}"
            if apt in out and baseline in out:
                out[f"{score}_gain_{statistic}"] = out[apt] - out[baseline]
    out["classes_improved"] = int((per_class["sdr_gain"] > 0).sum())
    out["n_classes"] = int(len(per_class))
    out["n_mixtures"] = int(len(units))
    clash = set(counts or {}) & set(out)
    if clash:
        raise ValueError(f"counts would overwrite headline numbers: {sorted(clash)}")
    out.update({k: int(v) for k, v in (counts or {}).items()})
    return out
