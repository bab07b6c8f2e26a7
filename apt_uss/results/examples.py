"""Audio examples: for a few test mixtures per class, the mixture, the reference and both systems' estimates."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from apt_uss.data.mixtures import render_mixture
from apt_uss.evaluation.evaluate import separate
from apt_uss.io.uris import safe_name
from apt_uss.models.frozen_separator import frozen_separator

log = logging.getLogger(__name__)

KINDS = ("mixture", "reference", "baseline", "apt")
EXAMPLES_TABLE = "examples.csv"
PEAK = 0.99


def pick_examples(per_mixture: pd.DataFrame, per_class: int) -> pd.DataFrame:
    """The ``per_class`` mixtures of each target class whose APT SDR lies nearest the class's median:
    typical estimates, not the best ones. Rows keep ``per_mixture``'s columns, classes in name order."""
    if per_class < 0:
        raise ValueError(f"per_class={per_class} must be >= 0")
    picked = []
    for _, group in per_mixture.groupby("target_class", sort=True):
        distance = (group["sdr_apt"] - group["sdr_apt"].median()).abs()
        picked.append(group.assign(_d=distance).sort_values(["_d", "mixture_id"]).head(per_class).drop(columns="_d"))
    return pd.concat(picked, ignore_index=True) if picked else per_mixture.head(0)


def render_examples(systems: dict, picks: pd.DataFrame, test_mixtures: pd.DataFrame, clips, mix_rule: str,
                    targets: np.ndarray, out_dir, sample_rate: int, device="cpu") -> pd.DataFrame:
    """Write ``audio/<class>__<mixture>__<kind>.wav`` for each picked mixture and return the table of them.

    ``systems`` maps "baseline" and "apt" to (separator, prompt table): with tune=joint the
    APT estimate comes from the tuned separator.

    The four files of one example share one gain (only if a peak would clip), so their
    levels stay comparable by ear. Columns: the pick's identity and SDRs, and one relative
    path per kind in ``KINDS``.
    """
    out = Path(out_dir)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    by_id = test_mixtures.set_index("mixture_id")
    row_of_target = {int(t): i for i, t in enumerate(targets)}
    folded: dict[int, object] = {}  # baseline and APT often share one separator: fold it once
    for separator, _ in systems.values():
        if id(separator) not in folded:
            folded[id(separator)] = frozen_separator(separator.to(device))
    systems = {name: (folded[id(separator)], table) for name, (separator, table) in systems.items()}
    records = []
    for n, pick in enumerate(picks.itertuples(index=False), 1):
        row = by_id.loc[[pick.mixture_id]].reset_index().iloc[0]
        mixture, reference = render_mixture(row, clips, mix_rule)
        k = row_of_target[int(row["target"])]
        estimates = {name: separate(separator, mixture[None], table[[k]], device)[0]
                     for name, (separator, table) in systems.items()}
        signals = {"mixture": mixture, "reference": reference, **estimates}
        peak = max(float(np.abs(s).max()) for s in signals.values())
        gain = PEAK / peak if peak > PEAK else 1.0
        record = {"target_class": pick.target_class, "mixture_id": pick.mixture_id,
                  "interferer_class": getattr(pick, "interferer_class", ""),
                  "sdr_mixture": pick.sdr_mixture, "sdr_baseline": pick.sdr_baseline, "sdr_apt": pick.sdr_apt}
        for kind, signal in signals.items():
            rel = f"audio/{safe_name(pick.target_class)}__{safe_name(pick.mixture_id)}__{kind}.wav"
            sf.write(out / rel, np.asarray(signal, np.float32) * gain, sample_rate, subtype="PCM_16")
            record[kind] = rel
        records.append(record)
        log.info("audio examples: %d/%d mixtures rendered", n, len(picks))
    table = pd.DataFrame(records, columns=["target_class", "mixture_id", "interferer_class", "sdr_mixture",
                                           "sdr_baseline", "sdr_apt", *KINDS])
    table.to_csv(out / EXAMPLES_TABLE, index=False)
    return table
