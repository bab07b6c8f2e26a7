"""Table 2 from a sweep's cells: every n_shot over several seeds, with intervals, tests and the paper's targets.

A cell is one (n_shot, seed) run of the sweep pipeline: its per-mixture scores (baseline and APT on
the same test mixtures), per-class medians, summary and provenance, in one folder
(``apt_uss.steps.sweep.score_cell_step`` writes it). Cells of one table must share their provenance.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from apt_uss.errors import AptUssError
from apt_uss.evaluation.metrics import SCORES, STATISTICS
from apt_uss.results.statistics import CONFIDENCE, mean_interval, paired_bootstrap, signed_rank_p

CELL_FILE = "cell.json"
# The statistics Table 2 gives per n_shot, each as the mean over seeds with its interval.
# Every score (SDR, SDRi, SI-SDR, SI-SDRi) by every statistic (pooled median and mean, class mean), for the baseline,
# APT and their difference; a metric some cells lack (cells written before it existed) is left out of its row.
TABLE_METRICS = tuple(f"{score}_{system}_{statistic}" for score in SCORES for statistic in STATISTICS
                      for system in ("baseline", "apt", "gain"))
# The targets the sweep is read against (issue 26; the paper's few-shot claim).
MIN_GAIN_AT_5 = 1.0


@dataclass(frozen=True)
class Cell:
    n_shot: str
    seed: int
    name: str
    summary: dict
    per_class: pd.DataFrame
    per_mixture: pd.DataFrame
    provenance: dict
    folder: Path


def shot_order(n_shot: str) -> float:
    """Sort key of an n_shot value: numbers ascending, ``full`` last."""
    return math.inf if str(n_shot) == "full" else float(n_shot)


def read_cells(folders: list[str | Path]) -> list[Cell]:
    """The cells in ``folders``; refuses repeats and cells whose provenance differs, naming what differs."""
    cells = []
    for folder in map(Path, folders):
        try:
            info = json.loads((folder / CELL_FILE).read_text())
            cells.append(Cell(str(info["n_shot"]), int(info["seed"]), str(info["name"]),
                              json.loads((folder / "summary.json").read_text()),
                              pd.read_csv(folder / "per_class.csv"), pd.read_csv(folder / "per_mixture.csv"),
                              dict(info.get("provenance", {})), folder))
        except (OSError, KeyError, ValueError) as exc:
            raise AptUssError(f"{folder} is not a sweep cell ({CELL_FILE}, summary.json, per_class.csv, "
                              f"per_mixture.csv): {exc}") from None
    if not cells:
        raise AptUssError("the sweep has no cells to aggregate")
    keys = [(c.n_shot, c.seed) for c in cells]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise AptUssError(f"the sweep has cell(s) {repeated} (n_shot, seed) more than once")
    differ = provenance_conflicts(cells)
    if differ:
        raise AptUssError("the sweep's cells differ in " + "; ".join(differ) + ": they came from other weights, data "
                          "or code and cannot share one table")
    return sorted(cells, key=lambda c: (shot_order(c.n_shot), c.seed))


def provenance_conflicts(cells: list[Cell]) -> list[str]:
    """``key (cell: value, ...)`` for every provenance entry the cells disagree on."""
    out = []
    for key in sorted({k for c in cells for k in c.provenance}):
        values = {c.name: c.provenance.get(key, "(not recorded)") for c in cells}
        if len(set(values.values())) > 1:
            out.append(f"{key} ({', '.join(f'{n}: {v}' for n, v in values.items())})")
    return out


def by_shot(cells: list[Cell]) -> dict[str, list[Cell]]:
    groups: dict[str, list[Cell]] = {}
    for cell in cells:
        groups.setdefault(cell.n_shot, []).append(cell)
    return dict(sorted(groups.items(), key=lambda kv: shot_order(kv[0])))


def few_shot_table(cells: list[Cell], confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Table 2: one row per n_shot; each metric's mean over seeds and the t interval (``_low``, ``_high``). A metric
    is left out of a row when a cell of it lacks the metric (cells written before it existed), except a gain, which
    is APT - baseline as ``summarise`` computes it wherever the cell has both."""
    rows = []
    for shot, group in by_shot(cells).items():
        row = {"n_shot": shot, "n_seeds": len(group), "seeds": ",".join(str(c.seed) for c in group)}
        for metric in TABLE_METRICS:
            values = [v for v in (_metric(c.summary, metric) for c in group) if v is not None]
            if len(values) == len(group):
                row[f"{metric}_mean"], row[f"{metric}_low"], row[f"{metric}_high"] = mean_interval(values, confidence)
        rows.append(row)
    return pd.DataFrame(rows)


def _metric(summary: dict, metric: str) -> float | None:
    """``summary[metric]``; for a ``<score>_gain_<statistic>`` the summary lacks, APT - baseline where it has both."""
    if metric in summary:
        return summary[metric]
    if "_gain_" in metric:
        apt, baseline = metric.replace("_gain_", "_apt_"), metric.replace("_gain_", "_baseline_")
        if apt in summary and baseline in summary:
            return summary[apt] - summary[baseline]
    return None


def aligned_scores(group: list[Cell], unit: str = "target_file") -> tuple[list[tuple[np.ndarray, np.ndarray]], int]:
    """Each cell's (baseline, apt) SDRs lined up by test unit (the target clip, which every seed shares), over the
    units every cell scored; and that number of units."""
    tables = [c.per_mixture.groupby(unit)[["sdr_baseline", "sdr_apt"]].mean() for c in group]
    common = sorted(set.intersection(*(set(t.index) for t in tables)))
    if not common:
        raise AptUssError(f"the cells {[c.name for c in group]} share no test clip: they cannot be paired")
    return [(t.loc[common, "sdr_baseline"].to_numpy(), t.loc[common, "sdr_apt"].to_numpy()) for t in tables], len(common)


def gain_tests(cells: list[Cell], resamples: int, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Per n_shot, how sure the APT - baseline gain is. The seeds share the test clips, so a test clip (as target)
    is the unit: the paired bootstrap interval of the pooled-median gain and of the mean gain resamples test clips,
    the same ones in every seed; the Wilcoxon signed-rank test takes each clip's gain averaged over seeds; a class
    is improved (worse) when its class-median gain averaged over seeds is above (below) zero."""
    rows = []
    for shot, group in by_shot(cells).items():
        pairs, n_units = aligned_scores(group)
        median, m_low, m_high = paired_bootstrap(pairs, "median_gain", resamples, confidence)
        mean, a_low, a_high = paired_bootstrap(pairs, "mean_gain", resamples, confidence)
        class_gain = pd.concat([c.per_class.set_index("target_class")["sdr_gain"] for c in group], axis=1).mean(axis=1)
        rows.append({"n_shot": shot, "n_seeds": len(group), "n_test_clips": n_units,
                     "n_mixtures": int(sum(len(c.per_mixture) for c in group)),
                     "gain_pooled_median": median, "gain_pooled_median_low": m_low,
                     "gain_pooled_median_high": m_high,
                     "gain_mean": mean, "gain_mean_low": a_low, "gain_mean_high": a_high,
                     "wilcoxon_p": signed_rank_p(np.mean([b for b, _ in pairs], axis=0),
                                                 np.mean([a for _, a in pairs], axis=0)),
                     "classes_improved": int((class_gain > 0).sum()), "classes_worse": int((class_gain < 0).sum()),
                     "n_classes": int(len(class_gain))})
    return pd.DataFrame(rows)


def check_targets(table: pd.DataFrame, tests: pd.DataFrame) -> list[dict]:
    """The sweep's targets, each with ``met`` (True, False, or None when the sweep lacks the cells) and the
    figures it rests on."""
    out = []
    low = dict(zip(tests["n_shot"], tests["gain_pooled_median_low"]))
    missed = {s: v for s, v in low.items() if not v > 0}
    out.append({"target": "APT beats the baseline at every n_shot (bootstrap 95% lower bound of the pooled-median "
                          "gain above 0)",
                "met": not missed,
                "figures": ", ".join(f"{s}: {v:+.2f}" for s, v in low.items())})
    rows = table.set_index("n_shot")
    if "5" in rows.index:
        gain = rows.loc["5", "sdr_gain_pooled_median_mean"]
        out.append({"target": f"5 shots: mean pooled-median gain over seeds of at least {MIN_GAIN_AT_5:+.0f} dB",
                    "met": bool(gain >= MIN_GAIN_AT_5), "figures": f"{gain:+.2f} dB"})
    else:
        out.append({"target": f"5 shots: mean pooled-median gain of at least {MIN_GAIN_AT_5:+.0f} dB", "met": None,
                    "figures": "no 5-shot cells"})
    if "5" in rows.index and "full" in rows.index:
        apt5, full = rows.loc["5", "sdr_apt_pooled_median_mean"], rows.loc["full", "sdr_baseline_pooled_median_mean"]
        out.append({"target": "APT at 5 shots at least matches the baseline with full data (pooled median)",
                    "met": bool(apt5 >= full), "figures": f"APT 5-shot {apt5:.2f} dB, baseline full {full:.2f} dB"})
    else:
        out.append({"target": "APT at 5 shots at least matches the baseline with full data", "met": None,
                    "figures": "needs 5-shot and full cells"})
    return out


def cells_table(cells: list[Cell], run_ids: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per cell: its headline numbers (and MLflow child run, where logged)."""
    rows = []
    for c in cells:
        row = {"cell": c.name, "n_shot": c.n_shot, "seed": c.seed}
        row.update({m: c.summary.get(m, math.nan) for m in ("sdr_baseline_pooled_median", "sdr_apt_pooled_median",
                                                              "sdr_gain_pooled_median", "sdr_gain_class_mean",
                                                              "si_sdr_gain_pooled_median")})
        row["classes_improved"] = f"{c.summary.get('classes_improved', '?')}/{c.summary.get('n_classes', '?')}"
        if run_ids:
            row["mlflow_run_id"] = run_ids.get(c.name, "")
        rows.append(row)
    return pd.DataFrame(rows)


SCORE_NAMES = {"sdr": "SDR", "sdri": "SDRi", "si_sdr": "SI-SDR", "si_sdri": "SI-SDRi"}


def score_rows(table: pd.DataFrame) -> list[dict]:
    """Every score beside SDR's pooled median: one row per (n_shot, score) with ``<statistic>`` -> (baseline, APT,
    gain), each the mean over seeds; a statistic the cells lack is missing from its row."""
    rows = []
    for row in table.to_dict("records"):
        for score, name in SCORE_NAMES.items():
            stats = {}
            for statistic in STATISTICS:
                values = [row.get(f"{score}_{system}_{statistic}_mean", math.nan) for system in ("baseline", "apt",
                                                                                                  "gain")]
                if not any(pd.isna(v) for v in values):
                    stats[statistic] = tuple(float(v) for v in values)
            if stats:
                rows.append({"n_shot": row["n_shot"], "score": name, **stats})
    return rows


def format_table(table: pd.DataFrame, tests: pd.DataFrame) -> str:
    """Table 2 as text: mean [95% interval over seeds] of the pooled median and the class mean, and the tests."""
    def cell(row, metric, sign=""):
        mean, low, high = (row.get(f"{metric}_{k}", math.nan) for k in ("mean", "low", "high"))
        interval = f" [{low:{sign}.2f}, {high:{sign}.2f}]" if not math.isnan(low) else ""
        return f"{mean:{sign}.2f}{interval}"

    lines = [f"Median SDR (dB), mean over seeds [{CONFIDENCE:.0%} t interval]",
             f"{'n_shot':>6s} {'seeds':>5s} | {'baseline (pooled)':>22s} {'APT (pooled)':>22s} {'gain':>22s} | "
             f"{'gain (class mean)':>22s}"]
    for row in table.to_dict("records"):
        lines.append(f"{row['n_shot']:>6s} {row['n_seeds']:>5d} | {cell(row, 'sdr_baseline_pooled_median'):>22s} "
                     f"{cell(row, 'sdr_apt_pooled_median'):>22s} {cell(row, 'sdr_gain_pooled_median', '+'):>22s} | "
                     f"{cell(row, 'sdr_gain_class_mean', '+'):>22s}")
    scores = score_rows(table)
    if scores:
        def both(values):
            return f"{values[0]:.2f} -> {values[1]:.2f} ({values[2]:+.2f})" if values else "n/a"

        lines += ["", "Every score (dB), mean over seeds: baseline -> APT (gain). SDRi and SI-SDRi: improvement over "
                  "the mixture's own score",
                  f"{'n_shot':>6s} {'score':>7s} | {'pooled median':>22s} | {'pooled mean':>22s} | {'class mean':>22s}"]
        for r in scores:
            lines.append(f"{r['n_shot']:>6s} {r['score']:>7s} | " + " | ".join(f"{both(r.get(s)):>22s}"
                                                                                for s in STATISTICS))
    lines += ["", f"Gain over paired test clips (bootstrap {CONFIDENCE:.0%} interval) and Wilcoxon signed-rank p",
              f"{'n_shot':>6s} {'clips':>8s} | {'pooled-median gain':>24s} {'mean gain':>24s} | {'p':>8s} | "
              "classes better/worse"]
    for r in tests.itertuples():
        median = f"{r.gain_pooled_median:+.2f} [{r.gain_pooled_median_low:+.2f}, {r.gain_pooled_median_high:+.2f}]"
        mean = f"{r.gain_mean:+.2f} [{r.gain_mean_low:+.2f}, {r.gain_mean_high:+.2f}]"
        lines.append(f"{r.n_shot:>6s} {r.n_test_clips:>8d} | {median:>24s} {mean:>24s} | {r.wilcoxon_p:8.2g} | "
                     f"{r.classes_improved}/{r.classes_worse} of {r.n_classes}")
    return "\n".join(lines)
