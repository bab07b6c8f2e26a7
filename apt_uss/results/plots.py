"""The report's figures (PNG): per-class gains, few-shot curves, the prompt map and the tuning loss.

Each function draws from the tables the pipeline already writes and returns the path
it saved, so the report step, ``make sweep`` and a notebook draw the same figures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from apt_uss.io.atomic import atomic_path

DPI = 110
BASELINE_COLOUR, APT_COLOUR = "#8c8c8c", "#1f77b4"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # steps run headless, in containers without a display
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> Path:
    plt = _pyplot()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_class_gains(per_class: pd.DataFrame, path) -> Path:
    """Baseline and APT median SDR of every class, classes sorted by APT's gain (the paper's Fig. 2)."""
    plt = _pyplot()
    table = per_class.sort_values("sdr_gain", ascending=False, ignore_index=True)
    x = np.arange(len(table))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.32 * len(table) + 2.5), 4.2))
    ax.bar(x - 0.2, table["sdr_baseline_median"], 0.4, label="baseline (initial prompts)", color=BASELINE_COLOUR)
    ax.bar(x + 0.2, table["sdr_apt_median"], 0.4, label="APT (tuned prompts)", color=APT_COLOUR)
    ax.plot(x, table["sdr_gain"], "k.", label="gain (APT - baseline)")
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_xticks(x, table["target_class"].astype(str), rotation=70, ha="right", fontsize=8)
    ax.set_ylabel("median SDR (dB)")
    ax.set_title("Median SDR per class, sorted by APT's gain")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def _few_shot_figure(table: pd.DataFrame, path, column, ylabel: str) -> Path:
    """Baseline and APT over n_shot, pooled median and class mean side by side. ``column(system, which, part)``
    names the table's column of a curve (``part``: mean, low, high; None where the table has no band)."""
    plt = _pyplot()
    labels = table["n_shot"].astype(str).tolist()
    x = np.arange(len(labels))
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.8), sharey=True)
    for ax, which, title in ((axes[0], "pooled", "median over test mixtures"),
                             (axes[1], "class_mean", "mean of class medians")):
        for system, style, colour in (("baseline", "o--", BASELINE_COLOUR), ("apt", "o-", APT_COLOUR)):
            ax.plot(x, table[column(system, which, "mean")], style, color=colour,
                    label="APT" if system == "apt" else system)
            low, high = column(system, which, "low"), column(system, which, "high")
            if low is not None and table[low].notna().any():
                ax.fill_between(x, table[low], table[high], color=colour, alpha=0.2, linewidth=0)
        ax.set_xticks(x, labels)
        ax.set_xlabel("training clips per class (n_shot)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(ylabel)
    axes[0].legend()
    return _save(fig, path)


def plot_few_shot(table: pd.DataFrame, path) -> Path:
    """Baseline and APT SDR over n_shot (the paper's Table 2 as a figure), pooled and class-mean medians."""
    return _few_shot_figure(table, path, lambda system, which, part: f"{system}_{which}" if part == "mean" else None,
                            "SDR (dB)")


def plot_few_shot_bands(table: pd.DataFrame, path) -> Path:
    """The sweep's few-shot curve: baseline and APT over n_shot, the mean over seeds with its 95% interval as a
    band, for the pooled median and the mean of class medians (``apt_uss.results.sweep_report.few_shot_table``)."""
    seeds = int(table["n_seeds"].min())

    def column(system: str, which: str, part: str) -> str:
        return f"sdr_{system}_{'pooled_median' if which == 'pooled' else which}_{part}"

    return _few_shot_figure(table, path, column,
                            f"SDR (dB), mean of {seeds} seed(s)" + (", 95% band" if seeds > 1 else ""))


def pca_2d(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, 2 principal axes, explained-variance fractions) of ``points`` (N, D)."""
    mean = points.mean(axis=0)
    _, s, vt = np.linalg.svd(points - mean, full_matrices=False)
    var = s**2
    return mean, vt[:2], var[:2] / max(var.sum(), 1e-12)


def plot_prompt_map(embeddings: np.ndarray, clip_targets: np.ndarray, initial: np.ndarray, tuned: np.ndarray,
                    targets: np.ndarray, class_names: np.ndarray, path) -> Path:
    """The training clips' embeddings and each class's initial and tuned prompt on the clips' two
    principal axes (the paper's Fig. 3 uses t-SNE; a linear map keeps distances comparable)."""
    plt = _pyplot()
    mean, axes, explained = pca_2d(embeddings.astype(np.float64))
    project = lambda p: (np.asarray(p, np.float64) - mean) @ axes.T  # noqa: E731
    clips2, init2, tuned2 = project(embeddings), project(initial), project(tuned)
    colours = plt.get_cmap("tab20" if len(targets) > 10 else "tab10")
    fig, ax = plt.subplots(figsize=(7.0, 5.6))
    for i, (t, name) in enumerate(zip(targets, class_names)):
        c = colours(i % colours.N)
        mine = clip_targets == t
        ax.scatter(clips2[mine, 0], clips2[mine, 1], s=10, color=c, alpha=0.35)
        ax.scatter(*init2[i], marker="o", s=70, facecolor="white", edgecolor=c, linewidth=2)
        ax.scatter(*tuned2[i], marker="*", s=160, color=c, edgecolor="black", linewidth=0.5, label=str(name))
        ax.annotate("", xy=tuned2[i], xytext=init2[i], arrowprops={"arrowstyle": "->", "color": c, "lw": 1})
    ax.set_xlabel(f"PC 1 ({explained[0]:.0%} of the clips' variance)")
    ax.set_ylabel(f"PC 2 ({explained[1]:.0%})")
    ax.set_title("Clip embeddings (dots), initial prompts (o) and tuned prompts (*)")
    ax.legend(fontsize=7, ncol=2 if len(targets) > 12 else 1, loc="best", markerscale=0.7)
    ax.grid(alpha=0.3)
    return _save(fig, path)


LOSS_LABELS = {"l1": "mean L1 loss", "snr": "mean loss (-SNR, dB)"}


def plot_tune_loss(loss: pd.DataFrame, path, loss_function: str = "l1") -> Path:
    """Mean tuning loss (``loss_function``: l1 or snr) of each epoch."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    from matplotlib.ticker import MaxNLocator

    ax.plot(loss["epoch"] + 1, loss["loss"], "o-", markersize=3, color=APT_COLOUR)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch (each draws new mixtures, so the loss is noisy)")
    ax.set_ylabel(LOSS_LABELS.get(loss_function, "mean loss"))
    ax.set_title("Prompt tuning loss")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def typical_example(examples: pd.DataFrame) -> int:
    """The row of the audio example whose APT SDR is the median of all examples' (ties: the first)."""
    sdr = examples["sdr_apt"].to_numpy(dtype=float)
    return int(np.argmin(np.abs(sdr - np.median(sdr))))


def plot_example_spectrograms(examples: pd.DataFrame, examples_dir, path, row: int | None = None) -> Path:
    """Log-magnitude spectrograms of one audio example: mixture, reference, baseline estimate, APT estimate (one
    colour scale, so the four compare)."""
    import soundfile as sf

    plt = _pyplot()
    row = typical_example(examples) if row is None else row
    picked = examples.iloc[row]
    kinds = (("mixture", "mixture"), ("reference", "reference (target alone)"),
             ("baseline", f"baseline estimate ({picked['sdr_baseline']:.1f} dB SDR)"),
             ("apt", f"APT estimate ({picked['sdr_apt']:.1f} dB SDR)"))
    specs, rate = [], None
    for kind, _ in kinds:
        audio, rate = sf.read(Path(examples_dir) / picked[kind], dtype="float32", always_2d=True)
        mono = audio.mean(axis=1)
        n_fft, hop = 1024, 256
        frames = max(1, 1 + (len(mono) - n_fft) // hop)
        window = np.hanning(n_fft).astype(np.float32)
        stack = np.stack([mono[i * hop : i * hop + n_fft] * window if i * hop + n_fft <= len(mono)
                          else np.pad(mono[i * hop :], (0, n_fft - len(mono[i * hop :]))) * window
                          for i in range(frames)])
        specs.append(20 * np.log10(np.abs(np.fft.rfft(stack, axis=1)).T + 1e-6))
    top = max(float(s.max()) for s in specs)
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.2), sharey=True)
    for ax, spec, (_, title) in zip(axes, specs, kinds):
        seconds = spec.shape[1] * 256 / rate
        image = ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=top - 80, vmax=top,
                          extent=(0, seconds, 0, rate / 2000))
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel("frequency (kHz)")
    fig.colorbar(image, ax=axes, label="dB", shrink=0.9)
    fig.suptitle(f"A typical test mixture: {picked['target_class']} (target) with {picked['interferer_class']}",
                 fontsize=10)
    return _save(fig, path)
