"""Separation of the test mixtures with one prompt table, and the SDR of every estimate."""

from __future__ import annotations

import itertools
import logging
import time

import numpy as np
import pandas as pd
import torch

from apt_uss.data.mixtures import render_mixture
from apt_uss.evaluation.metrics import SCORES, bss_sdr, is_silent, si_sdr
from apt_uss.evaluation.oracle import oracle_mask_sdr
from apt_uss.models.frozen_separator import frozen_separator

log = logging.getLogger(__name__)

# Identity columns of a test mixture carried into every results table.
MIXTURE_COLUMNS = ["mixture_id", "target_class", "interferer_class", "target_file", "interferer_file",
                   "target_offset", "interferer_offset"]


@torch.inference_mode()
def separate(separator, mixtures: np.ndarray, queries: np.ndarray, device) -> np.ndarray:
    wav = torch.from_numpy(mixtures).to(device)
    cond = torch.from_numpy(queries).to(device)
    return separator(wav, cond)["wav"].float().cpu().numpy()


def evaluate_prompts(
    separator: torch.nn.Module,
    test_mixtures: pd.DataFrame,
    clips,
    prompts: np.ndarray,
    targets: np.ndarray,
    mix_rule: str,
    device="cpu",
    batch_size: int | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Per-mixture SDR table of one prompt table's estimates, and counts of what was skipped.

    Columns: the mixture's identity (``MIXTURE_COLUMNS``, plus ``track`` and
    ``segment_offset`` for MUSDB18 segments), ``sdr_mixture`` (the unprocessed mixture),
    ``sdr_oracle_mask`` (the best mask on the separator's STFT: ``apt_uss.evaluation.oracle``), ``sdr``,
    ``sdri`` (sdr - sdr_mixture), ``si_sdr_mixture``, ``si_sdr`` and ``si_sdri`` (the scale-invariant
    SDR, ``apt_uss.evaluation.metrics.si_sdr``, NaN for a silent estimate) and ``silent_estimate``. Mixtures whose reference
    is silent are skipped and counted (``n_skipped_silent_reference``), so no table holds
    NaN or infinity.
    """
    if batch_size is None:
        # On CPU one 5-s mixture at a time runs 2.3x faster than batches of 8 (small config,
        # 2 cores): the U-Net's activations for a batch no longer fit in cache. Re-measured with
        # the channels-last folded copy (demo, 2 cores): 15-16 mixtures/s at batch 1, 10 at batch 8.
        batch_size = 1 if torch.device(device).type == "cpu" else 16
    n_fft, hop = separator.cfg.n_fft, separator.cfg.hop
    separator = frozen_separator(separator.to(device))
    row_of_target = {int(t): i for i, t in enumerate(targets)}
    missing = sorted({int(t) for t in test_mixtures["target"]} - set(row_of_target)) if len(test_mixtures) else []
    if missing:
        raise ValueError(f"the prompt table has no row for target ids {missing[:10]}")
    records, skipped = [], 0
    started = time.monotonic()
    rows = list(test_mixtures.itertuples(index=False))
    for start in range(0, len(rows), batch_size):
        batch = []
        for r in rows[start : start + batch_size]:
            mixture, reference = render_mixture(r, clips, mix_rule)
            if is_silent(reference):
                skipped += 1
            else:
                batch.append((r, mixture, reference))
        # Only mixtures of one length stack into a tensor: separate each run of equal lengths together.
        for _, run in itertools.groupby(batch, key=lambda item: len(item[1])):
            run = list(run)
            mix = np.stack([m for _, m, _ in run])
            estimates = separate(separator, mix, prompts[[row_of_target[int(r.target)] for r, _, _ in run]], device)
            for (r, mixture, reference), estimate in zip(run, estimates):
                rec = {c: getattr(r, c) for c in MIXTURE_COLUMNS if hasattr(r, c)}
                if hasattr(r, "track"):
                    rec.update(track=r.track, segment_offset=int(r.target_offset))
                rec["sdr_mixture"] = bss_sdr(reference, mixture)
                rec["sdr_oracle_mask"] = oracle_mask_sdr(mixture, reference, n_fft, hop)
                rec["sdr"] = bss_sdr(reference, estimate)
                rec["sdri"] = rec["sdr"] - rec["sdr_mixture"]
                rec["si_sdr_mixture"] = si_sdr(reference, mixture)
                rec["si_sdr"] = si_sdr(reference, estimate)
                rec["si_sdri"] = rec["si_sdr"] - rec["si_sdr_mixture"]
                rec["silent_estimate"] = is_silent(estimate)
                records.append(rec)
        done = min(start + batch_size, len(rows))
        if done // 16 != (done - batch_size) // 16 or done == len(rows):  # a progress line per 16 mixtures
            log.info("evaluate: %d/%d mixtures (%.1f mixtures/s)", done, len(rows), done / (time.monotonic() - started))
    table = pd.DataFrame(records)
    counts = {"n_skipped_silent_reference": skipped,
              "n_silent_estimate": int(table["silent_estimate"].sum()) if len(table) else 0}
    if skipped:
        log.warning("evaluate: %d of %d test mixtures have a silent reference and were skipped", skipped, len(rows))
    return table, counts


def compare_systems(baseline: pd.DataFrame, apt: pd.DataFrame) -> pd.DataFrame:
    """One row per test mixture with both systems' SDRs side by side (``sdr_baseline``, ``sdr_apt``, ...).

    Both tables must score the same mixtures: a mismatch means the two evaluations ran on
    different test sets, and comparing them would be meaningless.
    """
    a, b = set(baseline["mixture_id"]), set(apt["mixture_id"])
    if a != b:
        only = sorted(a ^ b)[:5]
        raise ValueError(f"the baseline and APT evaluations cover different test mixtures (e.g. {only})")
    scores = [c for c in SCORES if c in baseline.columns and c in apt.columns]
    keys = [c for c in baseline.columns if c not in (*scores, "silent_estimate")]
    merged = baseline.merge(apt[["mixture_id", *scores]], on="mixture_id", suffixes=("_baseline", "_apt"))
    merged = merged[keys + [f"{c}_{system}" for c in scores for system in ("baseline", "apt")]]
    merged["sdr_gain"] = merged["sdr_apt"] - merged["sdr_baseline"]
    return merged.sort_values("mixture_id", ignore_index=True)
