"""Audio prompt tuning: train the prompt table (and, for the upper bound, the separator) on simulated mixtures."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from typing import Callable

import numpy as np
import pandas as pd
import torch

from apt_uss.data.mixtures import render_mixture
from apt_uss.errors import AptUssError
from apt_uss.method.losses import separation_loss
from apt_uss.method.tuning_state import EpochState
from apt_uss.models.frozen_separator import frozen_separator
from apt_uss.params.checks import check_tune_options
from apt_uss.params.spec import check_choice

log = logging.getLogger(__name__)

# lr_schedule "constant" is the paper's Adam; "cosine" decays lr to 0 over the run's steps, so a high lr
# for a short run still ends with small steps.
PROGRESS_SECONDS = 30.0


def scheduled_lr(lr: float, lr_schedule: str, step: int, total_steps: int) -> float:
    """The learning rate of (0-based) ``step`` of ``total_steps``."""
    if lr_schedule == "constant":
        return lr
    if lr_schedule == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * step / max(total_steps, 1)))
    check_choice("lr_schedule", lr_schedule)
    raise AssertionError(f"lr_schedule {lr_schedule!r} is allowed but has no rule")


def _diverged(what: str, epoch: int, epochs: int, step: int, steps: int, lr: float, lr_schedule: str) -> None:
    raise AptUssError(f"tuning diverged at epoch {epoch}/{epochs}, step {step}/{steps}: {what} "
                      f"(lr={lr:g}, lr_schedule={lr_schedule}); the tuned prompts are not saved: use a smaller lr")


def _autocast(device: torch.device, precision: str):
    if precision == "bf16":
        # Weights and prompts stay fp32 (the optimizer's master copy); only the forward math runs in bf16.
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def tune_prompts(
    separator: torch.nn.Module,
    initial: np.ndarray,
    targets: np.ndarray,
    train_mixtures: pd.DataFrame,
    clips,
    mix_rule: str,
    crop_samples: int,
    lr: float = 3e-4,
    batch_size: int = 4,
    device: torch.device | str = "cpu",
    *,
    mode: str = "prompts",
    precision: str = "fp32",
    lr_schedule: str = "constant",
    loss_function: str = "l1",
    state: EpochState | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
    validation_mixtures: pd.DataFrame | None = None,
    keep_best_epoch: bool = False,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Return the tuned prompt table and the mean loss of each epoch.

    Each row of ``train_mixtures`` (one epoch's pairs after another, with crop offsets)
    gives a mixture y = x_k + x_l whose target x_k the separator must recover when queried
    with prompt k. ``mode="prompts"`` (APT) trains the prompts only: the forward runs a
    frozen, BatchNorm-folded copy of the separator (``frozen_separator``), so the caller's
    weights and statistics are untouched.
    ``mode="joint"`` also trains the separator's weights (in place; BatchNorm statistics
    stay frozen, as batches of 4 would make them drift). With ``state``, the prompts, the
    optimizer (and in joint mode the separator) are saved after every epoch, and a call
    that finds a saved state continues after its last epoch with identical results.
    ``on_epoch(epoch, loss)`` is called after each epoch (e.g. to log to MLflow).
    ``lr_schedule="cosine"`` decays lr over all epochs' steps (a resumed run continues the same curve).
    ``loss_function`` is "l1" (the paper's waveform L1) or "snr" (negative SNR in dB: ``apt_uss.method.losses``).
    With ``validation_mixtures`` (whole held-out training-fold clips, never test clips) the same loss on them
    after every epoch is the history's ``val_loss``; ``keep_best_epoch`` then returns the prompts of the
    epoch with the lowest one (the history's ``kept`` marks it) instead of the last epoch's.
    """
    if keep_best_epoch and (validation_mixtures is None or not len(validation_mixtures)):
        raise AptUssError("keep_best_epoch needs validation mixtures: set validation_clips to 1 or more")
    if keep_best_epoch and mode == "joint":
        raise AptUssError("keep_best_epoch is for tune=prompts: tune=joint would pair the best epoch's prompts "
                          "with the last epoch's separator")
    check_tune_options(mode, precision, lr_schedule, loss_function)
    device = torch.device(device)
    separator = separator.to(device).eval().requires_grad_(mode == "joint")
    # APT never changes a weight: run the BatchNorm-folded copy (same function, fewer passes).
    model = separator if mode == "joint" else frozen_separator(separator)
    prompts = torch.nn.Parameter(torch.from_numpy(np.array(initial, dtype=np.float32)).to(device))
    row_of_target = {int(t): i for i, t in enumerate(targets)}
    trained = [prompts] + ([p for p in separator.parameters()] if mode == "joint" else [])
    optimizer = torch.optim.Adam(trained, lr=lr)
    epochs = sorted(int(e) for e in train_mixtures["epoch"].unique()) if len(train_mixtures) else []
    history: list[dict] = []

    saved = state.load() if state is not None else None
    if saved is not None:
        with torch.no_grad():
            prompts.copy_(saved["prompts"].to(device))
        if mode == "joint":
            separator.load_state_dict(saved["separator"])
        optimizer.load_state_dict(saved["optimizer"])
        history = [{"epoch": int(row[0]), "loss": float(row[1]), "steps": int(row[2]),
                    "val_loss": float(row[3]) if len(row) > 3 else float("nan")} for row in saved["history"].tolist()]
        if "best_prompts" in saved:
            best = (int(saved["best_epoch"]), saved["best_prompts"].to(device))
        log.info("tune: resuming after epoch %d/%d from %s", len(history), len(epochs), state.uri)
    finished = {h["epoch"] for h in history}
    if saved is None or "best_prompts" not in saved:
        best = None
    todo = [e for e in epochs if e not in finished]

    steps_of = {e: -(-int((train_mixtures["epoch"] == e).sum()) // batch_size) for e in epochs}
    steps_total = sum(steps_of[e] for e in todo)
    run_steps = sum(steps_of.values())
    step = sum(steps_of[e] for e in finished)  # the run's global step, where the schedule resumes
    started, steps_done = time.monotonic(), 0
    last_line = started
    for epoch in todo:
        rows = train_mixtures[train_mixtures["epoch"] == epoch]
        losses = []
        for start in range(0, len(rows), batch_size):
            batch = list(rows.iloc[start : start + batch_size].itertuples(index=False))
            pairs = [render_mixture(r, clips, mix_rule, crop_samples) for r in batch]
            mixture = torch.from_numpy(np.stack([p[0] for p in pairs])).to(device)
            target = torch.from_numpy(np.stack([p[1] for p in pairs])).to(device)
            index = torch.tensor([row_of_target[int(r.target)] for r in batch], device=device)
            with _autocast(device, precision):
                estimate = model(mixture, prompts[index])["wav"]
            loss = separation_loss(estimate.float(), target, loss_function)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for group in optimizer.param_groups:
                group["lr"] = scheduled_lr(lr, lr_schedule, step, run_steps)
            try:
                optimizer.step()
            except RuntimeError as exc:  # an lr near float32's limit: "value cannot be converted ... overflow"
                if "overflow" not in str(exc):
                    raise
                _diverged("the optimizer's step overflows float32", len(history) + 1, len(epochs),
                          len(losses) + 1, steps_of[epoch], lr, lr_schedule)
            losses.append(loss.item())
            if not math.isfinite(losses[-1]):  # nan prompts would be written and scored as if tuned
                _diverged(f"the {loss_function} loss is {losses[-1]}", len(history) + 1, len(epochs),
                          len(losses), steps_of[epoch], lr, lr_schedule)
            steps_done += 1
            step += 1
            if time.monotonic() - last_line > PROGRESS_SECONDS:  # long epochs (paper config) show life too
                last_line = time.monotonic()
                rate = steps_done / (last_line - started)
                log.info("tune: epoch %d/%d step %d/%d, %.2f steps/s, ETA %.0f s", len(history) + 1, len(epochs),
                         steps_done, steps_total, rate, (steps_total - steps_done) / rate)
        if not all(bool(torch.isfinite(p).all()) for p in trained):  # the last step can still overflow them
            _diverged("the tuned " + ("weights" if mode == "joint" else "prompts") + " are no longer finite",
                      len(history) + 1, len(epochs), len(losses), steps_of[epoch], lr, lr_schedule)
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "steps": len(losses), "val_loss": float("nan")})
        if validation_mixtures is not None and len(validation_mixtures):
            history[-1]["val_loss"] = validation_loss(model, prompts, validation_mixtures, clips, mix_rule,
                                                      row_of_target, device, precision, loss_function)
            if keep_best_epoch and (best is None or history[-1]["val_loss"] < best_loss(history, best[0])):
                best = (epoch, prompts.detach().clone())
        if state is not None:
            snapshot = {"prompts": prompts.detach().cpu(), "optimizer": optimizer.state_dict(),
                        "history": torch.tensor([[h["epoch"], h["loss"], h["steps"], h["val_loss"]] for h in history],
                                                dtype=torch.float64)}
            if best is not None:
                snapshot.update(best_epoch=best[0], best_prompts=best[1].cpu())
            if mode == "joint":
                snapshot["separator"] = separator.state_dict()
            state.save(snapshot)
        if on_epoch is not None:
            on_epoch(epoch, history[-1]["loss"])
        rate = steps_done / max(time.monotonic() - started, 1e-9)
        shown = "" if math.isnan(history[-1]["val_loss"]) else f" validation {history[-1]['val_loss']:.5f}"
        log.info("tune: epoch %d/%d loss %.5f%s | %d/%d steps, %.2f steps/s, ETA %.0f s",
                 len(history), len(epochs), history[-1]["loss"], shown, steps_done, steps_total, rate,
                 (steps_total - steps_done) / max(rate, 1e-9))
    separator.requires_grad_(False)
    table = pd.DataFrame(history, columns=["epoch", "loss", "steps", "val_loss"])
    if validation_mixtures is None or not len(validation_mixtures):
        table = table.drop(columns="val_loss")  # the history as before validation existed
    if keep_best_epoch and best is not None:
        table["kept"] = table["epoch"] == best[0]
        log.info("tune: keeping the prompts of epoch %d of %d (lowest validation loss %.5f)", best[0] + 1,
                 len(epochs), best_loss(history, best[0]))
        return best[1].cpu().numpy(), table
    return prompts.detach().cpu().numpy(), table


def best_loss(history: list[dict], epoch: int) -> float:
    return next(h["val_loss"] for h in history if h["epoch"] == epoch)


@torch.no_grad()
def validation_loss(model, prompts: torch.Tensor, mixtures: pd.DataFrame, clips, mix_rule: str, row_of_target: dict,
                    device: torch.device, precision: str, loss_function: str) -> float:
    """The tuning loss of the current prompts on the validation mixtures (one whole clip at a time: their
    lengths may differ), averaged."""
    losses = []
    for r in mixtures.itertuples(index=False):
        mixture, target = render_mixture(r, clips, mix_rule)
        with _autocast(device, precision):
            estimate = model(torch.from_numpy(mixture[None]).to(device), prompts[[row_of_target[int(r.target)]]])["wav"]
        losses.append(separation_loss(estimate.float(), torch.from_numpy(target[None]).to(device), loss_function).item())
    return float(np.mean(losses))
