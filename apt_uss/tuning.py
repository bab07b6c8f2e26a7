"""Audio prompt tuning: train the prompt table only, through a frozen separator."""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
import torch

from .data.mixtures import render_mixture

log = logging.getLogger(__name__)


def tune_prompts(
    separator: torch.nn.Module,
    initial: np.ndarray,
    targets: np.ndarray,
    train_mixtures: pd.DataFrame,
    clips: dict[str, np.ndarray],
    mix_rule: str,
    crop_samples: int,
    lr: float = 3e-4,
    batch_size: int = 4,
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, pd.DataFrame]:
    """Return the tuned prompt table and the mean L1 loss of each epoch.

    Each row of ``train_mixtures`` (one epoch's pairs after another, with crop offsets)
    gives a mixture y = x_k + x_l whose target x_k the separator must recover when queried
    with prompt k. Only the prompts receive gradients; the separator stays frozen in eval mode.
    """
    device = torch.device(device)
    separator = separator.to(device).eval().requires_grad_(False)
    prompts = torch.nn.Parameter(torch.from_numpy(np.array(initial, dtype=np.float32)).to(device))
    row_of_target = {int(t): i for i, t in enumerate(targets)}
    optimizer = torch.optim.Adam([prompts], lr=lr)
    epochs = sorted(train_mixtures["epoch"].unique()) if len(train_mixtures) else []
    steps_total = sum(-(-int((train_mixtures["epoch"] == e).sum()) // batch_size) for e in epochs)
    history = []
    started = time.monotonic()
    steps_done = 0
    for epoch in epochs:
        rows = train_mixtures[train_mixtures["epoch"] == epoch]
        losses = []
        for start in range(0, len(rows), batch_size):
            batch = list(rows.iloc[start : start + batch_size].itertuples(index=False))
            pairs = [render_mixture(r, clips, mix_rule, crop_samples) for r in batch]
            mixture = torch.from_numpy(np.stack([p[0] for p in pairs])).to(device)
            target = torch.from_numpy(np.stack([p[1] for p in pairs])).to(device)
            index = torch.tensor([row_of_target[int(r.target)] for r in batch], device=device)
            estimate = separator(mixture, prompts[index])["wav"]
            loss = torch.nn.functional.l1_loss(estimate, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            steps_done += 1
        elapsed = time.monotonic() - started
        rate = steps_done / max(elapsed, 1e-9)
        history.append({"epoch": int(epoch), "loss": float(np.mean(losses)), "steps": len(losses)})
        log.info("tune: epoch %d/%d loss %.5f | %d/%d steps, %.2f steps/s, ETA %.0f s",
                 epoch + 1, len(epochs), history[-1]["loss"], steps_done, steps_total, rate,
                 (steps_total - steps_done) / max(rate, 1e-9))
    return prompts.detach().cpu().numpy(), pd.DataFrame(history, columns=["epoch", "loss", "steps"])
