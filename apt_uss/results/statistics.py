"""How sure a gain is: intervals over seeds, a paired bootstrap over test mixtures, a signed-rank test.

Each function takes plain arrays, so the sweep's numbers can be checked against textbook cases.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from apt_uss.data.streams import stream

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000


def mean_interval(values, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean, low, high): Student's t interval of the mean of ``values`` (seeds); NaN bounds for one value."""
    x = np.asarray(values, dtype=float)
    mean = float(x.mean()) if len(x) else math.nan
    if len(x) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, mean - half, mean + half


def paired_bootstrap(groups: list[tuple[np.ndarray, np.ndarray]], statistic: str = "median_gain",
                     resamples: int = BOOTSTRAP_RESAMPLES, confidence: float = CONFIDENCE,
                     seed: int = 0) -> tuple[float, float, float]:
    """(estimate, low, high): percentile bootstrap interval of the APT - baseline gain over paired test units.

    ``groups`` holds one (baseline, apt) pair of score arrays per seed, aligned: position i is the same
    test unit (a test clip as target) in every seed, since the seeds share the test set. Each resample
    draws units with replacement, the same draw for every seed and for both systems (paired), and
    averages the per-seed statistic over seeds, as the table averages seeds: ``median_gain`` is
    median(apt) - median(baseline) (the pooled-median gain); ``mean_gain`` is the mean of the per-unit
    differences.
    """
    if statistic not in ("median_gain", "mean_gain"):
        raise ValueError(f"statistic={statistic!r}: use median_gain or mean_gain")
    pairs = [(np.asarray(b, float), np.asarray(a, float)) for b, a in groups]
    shapes = {arr.shape for pair in pairs for arr in pair}
    if len(shapes) != 1 or next(iter(shapes)) == (0,) or len(next(iter(shapes))) != 1:
        raise ValueError(f"paired scores must be equal, non-empty 1-d arrays in every seed, got shapes {sorted(shapes)}")
    n = len(pairs[0][0])
    index = stream("bootstrap", seed).integers(0, n, size=(resamples, n))  # one draw of units for every seed
    estimate, draws = 0.0, np.zeros(resamples)
    for baseline, apt in pairs:
        if statistic == "median_gain":
            estimate += np.median(apt) - np.median(baseline)
            draws += np.median(apt[index], axis=1) - np.median(baseline[index], axis=1)
        else:
            estimate += np.mean(apt - baseline)
            draws += np.mean((apt - baseline)[index], axis=1)
    estimate, draws = estimate / len(pairs), draws / len(pairs)
    low, high = np.quantile(draws, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(estimate), float(low), float(high)


def signed_rank_p(baseline, apt) -> float:
    """Two-sided Wilcoxon signed-rank p-value of the paired per-mixture differences (NaN when all are zero)."""
    diff = np.asarray(apt, float) - np.asarray(baseline, float)
    if not np.any(diff != 0):
        return math.nan
    return float(stats.wilcoxon(diff, zero_method="wilcox", alternative="two-sided").pvalue)
