"""What users look at and listen to: figures, the HTML page, audio examples, run comparisons, `separate`."""

import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from apt_uss.errors import AptUssError
from apt_uss.evaluation.metrics import median_sdr_by_class, summarise
from apt_uss.evaluation.separation import separate_long
from apt_uss.io import tracking
from apt_uss.method.prompts import save_prompts
from apt_uss.results import plots
from apt_uss.results.examples import pick_examples
from apt_uss.results.html_report import render_html_report

ROOT = Path(__file__).resolve().parents[1]


def _per_mixture(n_classes=5, per_class=6, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_classes):
        for k in range(per_class):
            base = rng.normal(2.0 + c, 1.0)
            apt = base + rng.normal(1.0 - 0.4 * c, 0.5)
            mix = rng.normal(0.0, 0.5)
            rows.append({"mixture_id": c * 100 + k, "target_class": f"class_{c}", "interferer_class": "other",
                         "sdr_mixture": mix, "sdr_baseline": base, "sdr_apt": apt,
                         "sdri_baseline": base - mix, "sdri_apt": apt - mix})
    return pd.DataFrame(rows)


class _Tables(HTMLParser):
    """Rows of each <table id=...> in a page, as lists of cell texts; and the sources of <img>/<audio>."""

    def __init__(self):
        super().__init__()
        self.tables, self.current, self.row, self.cell, self.sources = {}, None, None, None, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.current = attrs.get("id")
            self.tables[self.current] = []
        elif tag == "tr" and self.current:
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = ""
        elif tag in ("img", "audio"):
            self.sources.append((tag, attrs.get("src", "")))

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.row is not None:
            self.row.append(self.cell.strip())
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.tables[self.current].append(self.row)
            self.row = None
        elif tag == "table":
            self.current = None


def _figures(tmp_path, per_class):
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(30, 16)).astype(np.float32)
    clip_targets = np.repeat(np.arange(5), 6)
    initial = np.stack([emb[clip_targets == t].mean(0) for t in range(5)])
    tuned = initial + rng.normal(0, 0.3, initial.shape)
    loss = pd.DataFrame({"epoch": range(6), "loss": np.linspace(0.05, 0.03, 6), "steps": 8})
    return {
        "gains": plots.plot_class_gains(per_class, tmp_path / "class_gains.png"),
        "map": plots.plot_prompt_map(emb, clip_targets, initial, tuned, np.arange(5),
                                     np.array([f"class_{c}" for c in range(5)]), tmp_path / "prompt_map.png"),
        "loss": plots.plot_tune_loss(loss, tmp_path / "tune_loss.png"),
    }


def test_html_report_has_one_row_per_class_with_the_metrics_tables_numbers(tmp_path):
    per_mixture = _per_mixture()
    per_class = median_sdr_by_class(per_mixture)
    summary = summarise(per_mixture, per_class)
    figures = _figures(tmp_path, per_class)
    page = render_html_report(summary, per_class, figures, None, None, title="run-x", params={"n_shot": "5", "epochs": 20.0, "lr": 0.01})
    parsed = _Tables()
    parsed.feed(page)
    rows = parsed.tables["per-class"][1:]
    assert [r[0] for r in rows] == list(per_class["target_class"])  # one row per class, sorted by gain
    for row, ref in zip(rows, per_class.itertuples()):  # the page shows 2 decimals: half a unit of the last
        assert int(row[1]) == ref.n_mixtures
        assert float(row[2]) == pytest.approx(ref.sdr_baseline_median, abs=0.005)
        assert float(row[3]) == pytest.approx(ref.sdr_apt_median, abs=0.005)
        assert float(row[4]) == pytest.approx(ref.sdr_gain, abs=0.005)
    headline = {r[0]: r[1:] for r in parsed.tables["headline"][1:]}
    pooled = headline["pooled median SDR (dB)"]
    assert float(pooled[0]) == pytest.approx(summary["sdr_baseline_pooled_median"], abs=0.005)
    assert float(pooled[1]) == pytest.approx(summary["sdr_apt_pooled_median"], abs=0.005)
    assert float(pooled[2]) == pytest.approx(summary["sdr_gain_pooled_median"], abs=0.005)
    # the figures are embedded, so the page is whole on its own (KFP UI, MLflow viewer, a download)
    assert "epochs=20, lr=0.01, n_shot=5" in page  # KFP's floats shown as the integers the user gave
    images = [src for tag, src in parsed.sources if tag == "img"]
    assert len(images) == 3 and all(src.startswith("data:image/png;base64,") for src in images)


def test_class_gain_figure_sorts_by_gain_and_figures_are_drawn(tmp_path):
    per_class = median_sdr_by_class(_per_mixture())
    shuffled = per_class.sample(frac=1.0, random_state=3)
    figures = _figures(tmp_path, shuffled)
    import matplotlib.image as mpimg

    for path in figures.values():
        image = mpimg.imread(path)
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300
        assert image[..., :3].std() > 0.05  # something is drawn, not a blank canvas
    # wider with more classes, so 50 ESC-50 labels stay legible
    wide = plots.plot_class_gains(median_sdr_by_class(_per_mixture(n_classes=40, per_class=2)), tmp_path / "w.png")
    assert mpimg.imread(wide).shape[1] > mpimg.imread(figures["gains"]).shape[1] * 1.5


def test_prompt_map_projection_keeps_the_main_direction():
    rng = np.random.default_rng(0)
    direction = rng.normal(size=32)
    direction /= np.linalg.norm(direction)
    points = rng.normal(size=(200, 1)) * 10 * direction + rng.normal(scale=0.1, size=(200, 32))
    mean, axes, explained = plots.pca_2d(points)
    assert abs(axes[0] @ direction) > 0.99 and explained[0] > 0.95
    assert np.allclose(axes @ axes.T, np.eye(2), atol=1e-8)


def test_few_shot_figure_from_a_sweep_table(tmp_path):
    table = pd.DataFrame({"n_shot": ["1", "5", "10", "full"], "baseline_pooled": [3.0, 3.1, 2.4, 1.9],
                          "apt_pooled": [2.6, 5.2, 5.0, 5.8], "baseline_class_mean": [4.0, 3.7, 3.3, 3.1],
                          "apt_class_mean": [4.5, 7.1, 7.7, 8.1]})
    import matplotlib.image as mpimg

    image = mpimg.imread(plots.plot_few_shot(table, tmp_path / "few_shot.png"))
    assert image.shape[1] > image.shape[0] and image[..., :3].std() > 0.05


def test_examples_are_the_mixtures_nearest_each_class_median():
    per_mixture = _per_mixture(n_classes=3, per_class=7)
    picks = pick_examples(per_mixture, 2)
    assert picks.groupby("target_class").size().to_dict() == {"class_0": 2, "class_1": 2, "class_2": 2}
    for cls, group in per_mixture.groupby("target_class"):
        median = group["sdr_apt"].median()
        nearest = set(group.loc[(group["sdr_apt"] - median).abs().nsmallest(2).index, "mixture_id"])
        assert set(picks.loc[picks["target_class"] == cls, "mixture_id"]) == nearest
    assert len(pick_examples(per_mixture, 0)) == 0


class _Identity(torch.nn.Module):
    def forward(self, wav, cond):
        return {"wav": wav * 1.0}


@pytest.mark.parametrize("length", [1000, 32000 * 5, 32000 * 23 + 17])
def test_separate_long_keeps_length_and_unit_gain_across_chunk_seams(length):
    audio = np.random.default_rng(length).normal(size=length).astype(np.float32)
    out = separate_long(_Identity(), audio, np.zeros(4, np.float32), chunk=32000 * 5, overlap=0.5)
    assert out.shape == audio.shape
    # The cross-fade weights sum to one everywhere: through an identity model the output is the input
    # up to the float32 rounding of a weighted sum of two terms (a few eps32 = 1.2e-7 relative);
    # rtol 1e-5 is 80 eps, far below a seam's dip or bump (a weight sum off by 1% or more).
    np.testing.assert_allclose(out, audio, rtol=1e-5, atol=1e-6)


def test_separate_command_on_a_long_stereo_file_returns_its_length_rate_and_channels(tmp_path):
    from apt_uss.models.config import get_config

    dim = get_config("tiny").embed_dim
    save_prompts(tmp_path / "prompts.npz", np.random.default_rng(0).normal(size=(2, dim)).astype(np.float32),
                 np.array([0, 1]), np.array(["dog", "rain"]))
    rate, frames = 44100, 44100 * 13 + 5
    sf.write(tmp_path / "in.wav", np.random.default_rng(1).uniform(-0.3, 0.3, (frames, 2)), rate, subtype="PCM_16")
    cmd = [sys.executable, "-m", "apt_uss", "separate", "--prompts", str(tmp_path / "prompts.npz"), "--class", "rain",
           "--backbone", "tiny", "--random-weights", str(tmp_path / "in.wav"), str(tmp_path / "out" / "rain.wav")]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    info = sf.info(tmp_path / "out" / "rain.wav")
    assert (info.frames, info.samplerate, info.channels) == (frames, rate, 2)
    assert json.loads(done.stdout.strip().splitlines()[-1])["samples"] == frames
    # a class the prompts do not have: one line that lists the classes they have
    bad = subprocess.run(cmd[:7] + ["cat"] + cmd[8:], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "'cat' is not in the prompts" in bad.stderr and "dog, rain" in bad.stderr


def test_compare_lines_up_chosen_runs_and_names_an_unknown_one(tmp_path):
    from apt_uss.results.compare import compare_runs, format_comparison

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ids = []
    for name, shot, apt in (("five", "5", 5.2), ("full", "full", 5.9), ("one", "1", 2.6)):
        metrics = {"sdr_baseline_pooled_median": 3.0, "sdr_apt_pooled_median": apt,
                   "sdr_gain_pooled_median": apt - 3.0, "sdr_baseline_class_mean": 3.5, "sdr_apt_class_mean": apt + 1,
                   "sdr_gain_class_mean": apt - 2.5, "classes_improved": 9, "n_classes": 10}
        ids.append(tracking.log_run(uri, "exp", name, {"n_shot": shot, "dataset": "synthetic", "backbone": "demo"},
                                    metrics))
    chosen = compare_runs(uri, [ids[2], ids[0]])
    assert list(chosen["run"]) == ["one", "five"] and list(chosen["apt_pooled"]) == [2.6, 5.2]
    latest = compare_runs(uri, experiment="exp", last=2)
    assert list(latest["n_shot"]) == ["1", "full"]
    text = format_comparison(chosen)
    assert re.search(r"one .* 1 .*demo.*\|\s+3\.00\s+2\.60\s+-0\.40", text) and "9/10" in text
    with pytest.raises(AptUssError, match="run 'nope' is not in the tracking store"):
        compare_runs(uri, ["nope"])


def _examples(folder, n=3, seconds=2.0, rate=32000):
    rng = np.random.default_rng(5)
    rows = []
    (folder / "audio").mkdir(parents=True)
    for i in range(n):
        row = {"target_class": f"class_{i}", "mixture_id": i, "interferer_class": "other", "sdr_mixture": 0.0,
               "sdr_baseline": 1.0 + i, "sdr_apt": 2.5 + i}
        for kind in ("mixture", "reference", "baseline", "apt"):
            row[kind] = f"audio/class_{i}__{i}__{kind}.wav"
            sf.write(folder / row[kind], rng.uniform(-0.2, 0.2, int(seconds * rate)), rate, subtype="PCM_16")
        rows.append(row)
    return pd.DataFrame(rows)


def test_html_report_plays_every_example_and_links_past_its_size_budget(tmp_path, monkeypatch):
    import base64
    import io

    from apt_uss.results import html_report

    per_mixture = _per_mixture(n_classes=3)
    per_class = median_sdr_by_class(per_mixture)
    summary = summarise(per_mixture, per_class)
    examples = _examples(tmp_path / "examples")
    page = render_html_report(summary, per_class, {}, examples, tmp_path / "examples", title="t")
    parsed = _Tables()
    parsed.feed(page)
    rows = parsed.tables["audio-examples"][1:]
    assert [r[0] for r in rows] == ["class_0", "class_1", "class_2"] and rows[1][-1] == "2.00 / 3.50"
    players = [src for tag, src in parsed.sources if tag == "audio"]
    assert len(players) == 12 and all(p.startswith("data:audio/mpeg;base64,") for p in players)
    decoded, rate = sf.read(io.BytesIO(base64.b64decode(players[0].split(",", 1)[1])))
    assert rate == 32000 and abs(len(decoded) / rate - 2.0) < 0.1  # the preview is the clip, not a stub
    # past the budget, rows link to their WAV instead of growing the page
    monkeypatch.setattr(html_report, "PREVIEW_BUDGET_BYTES", 1)
    small = render_html_report(summary, per_class, {}, examples, tmp_path / "examples", title="t")
    # (the one player keeps its WAV link beside it)
    assert small.count("<audio ") == 1 and small.count("href='examples/audio/") == 12


def test_a_preview_is_encoded_once_per_version_of_its_file(tmp_path, monkeypatch):
    """The report writes its page twice (its folder's and the KFP UI's): the second reuses the MP3s, unless a WAV
    changed in between."""
    from apt_uss.results import html_report

    encoded = []
    encode = sf.write
    monkeypatch.setattr(html_report.sf, "write", lambda *args, **kwargs: (encoded.append(1), encode(*args, **kwargs)))
    wav = tmp_path / "clip.wav"
    sf.write(wav, np.full(3200, 0.1), 32000, subtype="PCM_16")
    encoded.clear()
    first = html_report._preview(wav)
    assert html_report._preview(wav) == first and len(encoded) == 1
    sf.write(wav, np.full(6400, 0.1), 32000, subtype="PCM_16")
    encoded.clear()
    assert html_report._preview(wav) != first and len(encoded) == 1


def test_compare_and_the_few_shot_table_refuse_runs_of_other_weights_naming_what_differs(tmp_path, caplog):
    import logging

    from apt_uss.results.compare import compare_runs
    from apt_uss.results.sweep import few_shot_table

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    metrics = {"sdr_baseline_pooled_median": 3.0, "sdr_apt_pooled_median": 4.0, "sdr_gain_pooled_median": 1.0,
               "sdr_baseline_class_mean": 3.5, "sdr_apt_class_mean": 4.5, "sdr_gain_class_mean": 1.0,
               "classes_improved": 9, "n_classes": 10}
    ids = []
    for name, shot, weights in (("old", "1", "sha256:aaaa"), ("new", "5", "sha256:bbbb")):
        params = {"n_shot": shot, "dataset": "synthetic", "backbone": "demo",
                  "provenance.separator_weights": weights, "provenance.git_commit": "c0ffee"}
        ids.append(tracking.log_run(uri, "exp", name, params, metrics))
    with pytest.raises(AptUssError, match=r"the runs differ in separator_weights \(MLflow parameters provenance\.\*\)"):
        compare_runs(uri, ids)
    with caplog.at_level(logging.INFO, logger="apt_uss.results.sweep"):
        table = few_shot_table(uri, "exp")
    assert list(table["n_shot"]) == ["5"]  # the latest run's weights only
    assert f"run {ids[0]} (n_shot 1) left out: it differs from the latest run in separator_weights" in caplog.text


def test_a_prompt_file_records_the_backbone_weights_and_the_dataset_it_came_from(tmp_path):
    from apt_uss.method.prompts import load_prompt_provenance
    from apt_uss.models.backbone import BackboneSpec
    from apt_uss.steps import data as data_steps
    from apt_uss.steps import pipeline as steps

    data_steps.fetch_dataset_step("synthetic", str(tmp_path / "ds"), n_classes=2, seed=0)
    data_steps.split_folds_step(str(tmp_path / "ds"), str(tmp_path / "splits.csv"), n_shot="1")
    steps.init_prompts_step(str(tmp_path / "ds"), str(tmp_path / "splits.csv"), str(tmp_path / "p.npz"),
                            str(tmp_path / "emb.npz"), backbone=BackboneSpec("tiny", seed=3, random_weights=True))
    recorded = load_prompt_provenance(tmp_path / "p.npz")
    manifest = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert recorded == {"backbone": "tiny", "sed_weights": "random:3", "separator_weights": "random:3",
                        "dataset_fingerprint": manifest["fingerprint"]}
    assert len(manifest["fingerprint"]) == 64
    demo = BackboneSpec("demo").provenance()
    card = json.loads((Path(steps.__file__).parents[1] / "models" / "weights" / "demo.json").read_text())
    assert demo["separator_weights"] == f"sha256:{card['sha256']}"
    assert demo["sed_weights"] == f"embedded:sha256:{card['sha256']}"


class _References(HTMLParser):
    """Every src and href of a page."""

    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        self.found += [(tag, value) for name, value in attrs if name in ("src", "href") and value is not None]


def _broken_references(page: str, folder: Path) -> list[str]:
    """The references of ``page`` that do not resolve: relative files missing beside it, data URIs that do not
    decode, empty ones."""
    import base64
    import binascii

    parser = _References()
    parser.feed(page)
    broken = []
    for tag, value in parser.found:
        if value.startswith("data:"):
            try:
                base64.b64decode(value.split(",", 1)[1], validate=True)
            except (IndexError, binascii.Error):
                broken.append(f"{tag}: undecodable data URI")
        elif value.startswith(("http://", "https://", "get-artifact")):
            continue
        elif not value or not (folder / value).is_file():
            broken.append(f"{tag}: {value!r}")
    return broken


def test_the_report_page_explains_itself_and_has_no_broken_reference(tmp_path):
    per_mixture = _per_mixture(n_classes=3)
    per_class = median_sdr_by_class(per_mixture)
    summary = summarise(per_mixture, per_class)
    folder = tmp_path / "report"
    examples = _examples(folder / "examples")
    figures = {"Spectrograms": plots.plot_example_spectrograms(examples, folder / "examples",
                                                               folder / "figures" / "spectrograms.png")}
    assert plots.typical_example(examples) == 1  # APT SDRs 2.5, 3.5, 4.5: the median is the second
    page = render_html_report(summary, per_class, figures, examples, folder / "examples",
                              title="APT vs baseline on debian_sounds, 5-shot, demo backbone", run_name="run-7",
                              params={"epochs": 20.0, "n_shot": "5"})
    (folder / "report.html").write_text(page)
    assert _broken_references(page, folder) == []
    assert page.count("href='examples/audio/") == 12  # every WAV linked
    assert "<title>APT vs baseline on debian_sounds, 5-shot, demo backbone</title>" in page
    assert "epochs=20," in page and "epochs=20.0" not in page
    summary_text = re.search(r"<div id='summary'>(.*?)</div>", page).group(1)
    assert summary_text.count("<p>") == 3
    assert f"from {summary['sdr_baseline_pooled_median']:.2f} dB to {summary['sdr_apt_pooled_median']:.2f} dB" \
        in summary_text
    assert f"{int(summary['classes_improved'])} of 3 classes improved" in summary_text
    # mixtures near 0 dB: SDRi would repeat SDR, so it is left out and the page says why
    assert "SDRi (the SDR gained over the mixture itself) is not shown" in page
    parsed = _Tables()
    parsed.feed(page)
    assert "baseline SDRi" not in parsed.tables["per-class"][0]
    # mixtures at another level (mix_rule=sum): SDRi is shown
    louder = per_mixture.assign(sdr_mixture=per_mixture["sdr_mixture"] - 4.0,
                                sdri_baseline=per_mixture["sdr_baseline"] - per_mixture["sdr_mixture"] + 4.0,
                                sdri_apt=per_mixture["sdr_apt"] - per_mixture["sdr_mixture"] + 4.0)
    per_class_l = median_sdr_by_class(louder)
    shown = render_html_report(summarise(louder, per_class_l), per_class_l, {}, None, None, title="t")
    assert "baseline SDRi" in shown and "is not shown" not in shown
    # the copy the Kubeflow UI shows alone links to nothing beside it
    alone = render_html_report(summary, per_class, figures, examples, folder / "examples", title="t", wav_links=False)
    assert _broken_references(alone, tmp_path / "elsewhere") == []
