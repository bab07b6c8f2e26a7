"""One self-contained HTML page per run: headline numbers, the per-class table, the figures and audio players.

Figures and audio previews are embedded as data URIs, so the page shows the same in the Kubeflow
UI (which renders an HTML artifact on its own), in MLflow's artifact viewer and from a
downloaded copy.
"""

from __future__ import annotations

import base64
import functools
import html
import io
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from apt_uss.evaluation.metrics import STATISTICS
from apt_uss.io.atomic import atomic_path

HEADLINE = (("pooled median SDR (dB)", "sdr_{}_pooled_median"), ("mean of class medians (dB)", "sdr_{}_class_mean"),
            ("pooled median SDRi (dB)", "sdri_{}_pooled_median"), ("pooled median SI-SDR (dB)", "si_sdr_{}_pooled_median"),
            ("pooled median SI-SDRi (dB)", "si_sdri_{}_pooled_median"))
CLASS_COLUMNS = (("class", "target_class", "{}"), ("mixtures", "n_mixtures", "{:d}"),
                 ("baseline SDR", "sdr_baseline_median", "{:.2f}"), ("APT SDR", "sdr_apt_median", "{:.2f}"),
                 ("gain", "sdr_gain", "{:+.2f}"), ("baseline SDRi", "sdri_baseline_median", "{:.2f}"),
                 ("APT SDRi", "sdri_apt_median", "{:.2f}"), ("oracle mask SDR", "sdr_oracle_mask_median", "{:.2f}"))
STYLE = """body{font-family:sans-serif;margin:1.5em;max-width:72em}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}
img{max-width:100%;margin:.5em 0}audio{width:12em;height:2em}.note{color:#555;font-size:.9em}"""


def _png(path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


# The page embeds MP3 previews (about 100 kbit/s: 60 kB per 5-s clip, a fifth of the WAV; every
# browser plays MP3) up to this many bytes; later examples link to their WAV instead, so a
# 50-class run does not make a page the Kubeflow UI cannot open.
PREVIEW_BUDGET_BYTES = 16 * 2**20
MP3_COMPRESSION = 0.8


def _preview(path) -> str:
    """The WAV at ``path`` as an MP3 data URI; the report writes its page twice (its folder's and the KFP UI's), so
    the encoding is kept for a file not changed since."""
    stat = Path(path).stat()
    return _mp3_data_uri(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)  # 256 previews of 5 s: about 20 MB
def _mp3_data_uri(path: str, mtime_ns: int, size: int) -> str:
    audio, rate = sf.read(path, dtype="float32")
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format="MP3", subtype="MPEG_LAYER_III", compression_level=MP3_COMPRESSION,
             bitrate_mode="CONSTANT")
    return "data:audio/mpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _cell(fmt: str, value) -> str:
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return "n/a"
    return html.escape(fmt.format(int(value) if fmt == "{:d}" else value))


def _oracle_note(summary: dict) -> str:
    value = summary.get("sdr_oracle_mask_pooled_median")
    return "" if value is None else f"; oracle mask, the ceiling of the separator's output kind: {value:.2f} dB"


# Below this, the mixtures sit at about 0 dB (energy-matched): SDRi repeats SDR and is left out of the tables.
SDRI_SHOWN_ABOVE_DB = 0.5


def plain_summary(summary: dict, per_class: pd.DataFrame) -> list[str]:
    """Three sentences a reader without the paper understands: what changed, for how many classes, and the scale."""
    b, a = summary["sdr_baseline_pooled_median"], summary["sdr_apt_pooled_median"]
    gain = summary.get("sdr_gain_pooled_median", a - b)
    verb = "raised" if gain > 0 else "lowered" if gain < 0 else "left"
    lines = [f"Tuning the prompts {verb} the typical (median) separation quality from {b:.2f} dB to {a:.2f} dB "
             f"SDR ({gain:+.2f} dB) over {int(summary['n_mixtures'])} test mixtures; higher is better, and 3 dB "
             "is about half the interfering energy removed."]
    ranked = per_class.sort_values("sdr_gain", ascending=False)
    best, worst = ranked.iloc[0], ranked.iloc[-1]
    lines.append(f"{int(summary['classes_improved'])} of {int(summary['n_classes'])} classes improved; the most "
                 f"{best['target_class']} ({best['sdr_gain']:+.2f} dB), the least {worst['target_class']} "
                 f"({worst['sdr_gain']:+.2f} dB).")
    scale = f"For scale, the unprocessed mixture scores {summary['sdr_mixture_pooled_median']:.2f} dB"
    oracle = summary.get("sdr_oracle_mask_pooled_median")
    lines.append(scale + (f" and the oracle mask, the best this separator's kind of output can do, {oracle:.2f} dB."
                          if oracle is not None else "."))
    return lines


def _sdri_shown(summary: dict) -> bool:
    return abs(float(summary.get("sdr_mixture_pooled_median", 0.0))) >= SDRI_SHOWN_ABOVE_DB


def render_html_report(summary: dict, per_class: pd.DataFrame, figures: dict[str, Path], examples: pd.DataFrame | None,
                       examples_dir: Path | None, title: str, params: dict | None = None, run_name: str = "",
                       wav_links: bool = True) -> str:
    """The page. ``wav_links`` False leaves out the links to ``examples/audio/*.wav`` (a copy shown without the
    report's folder, as the Kubeflow UI shows it)."""
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{STYLE}</style>"
             f"</head><body><h1>{e(title)}</h1>"]
    if run_name:
        parts.append(f"<p class='note'>pipeline run {e(run_name)}</p>")
    parts.append("<div id='summary'>" + "".join(f"<p>{e(line)}</p>" for line in plain_summary(summary, per_class))
                 + "</div>")
    sdri = _sdri_shown(summary)
    if params:
        # KFP passes a dict parameter through JSON, which turns every int into a float.
        plain = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in params.items()}
        shown = ", ".join(f"{e(str(k))}={e(str(v))}" for k, v in sorted(plain.items()) if str(v) != "")
        parts.append(f"<p class='note'>{shown}</p>")
    parts.append("<h2>Headline</h2><table id='headline'><tr><th></th><th>baseline</th><th>APT</th><th>gain</th></tr>")
    gains = {"sdr_{}_pooled_median": "sdr_gain_pooled_median", "sdr_{}_class_mean": "sdr_gain_class_mean"}
    for label, key in HEADLINE:
        if key.format("baseline") not in summary:  # an evaluation from before SI-SDR was scored
            continue
        if key.startswith("sdri") and not sdri:
            continue
        b, a = summary[key.format("baseline")], summary[key.format("apt")]
        gain = summary.get(gains.get(key, ""), a - b)
        parts.append(f"<tr><td>{e(label)}</td><td>{b:.2f}</td><td>{a:.2f}</td><td>{gain:+.2f}</td></tr>")
    parts.append(f"</table><p>{int(summary['classes_improved'])} of {int(summary['n_classes'])} classes improved; "
                 f"{int(summary['n_mixtures'])} test mixtures (mixture itself: "
                 f"{summary['sdr_mixture_pooled_median']:.2f} dB{_oracle_note(summary)}).</p>")
    if not sdri:
        parts.append("<p class='note'>SDRi (the SDR gained over the mixture itself) is not shown: the mixtures are "
                     "at about 0 dB, so it equals SDR. It is shown when mixtures are not energy-matched "
                     "(mix_rule=sum).</p>")
    columns = [c for c in CLASS_COLUMNS if c[1] in per_class.columns  # tables from before the oracle column
               and (sdri or not c[1].startswith("sdri"))]
    parts.append("<h2>Per class</h2><table id='per-class'><tr>"
                 + "".join(f"<th>{e(h)}</th>" for h, _, _ in columns) + "</tr>")
    for row in per_class.itertuples(index=False):
        parts.append("<tr>" + "".join(f"<td>{_cell(fmt, getattr(row, col))}</td>" for _, col, fmt in columns)
                     + "</tr>")
    parts.append("</table>")
    if figures:
        parts.append("<h2>Figures</h2>")
        for caption, path in figures.items():
            parts.append(f"<figure><img alt='{e(caption)}' src='{_png(path)}'><figcaption>{e(caption)}"
                         "</figcaption></figure>")
    if examples is not None and len(examples):
        where = ("each player's <em>wav</em> link opens the WAV in <code>examples/audio/</code> beside this page"
                 if wav_links else "the WAVs are in the run's report folder (<code>examples/audio/</code>) in "
                                   "MLflow and S3")
        parts.append("<h2>Audio examples</h2><p class='note'>Per class, the test mixtures whose APT SDR lies nearest "
                     f"the class median. The four files of a row share one gain. Players are MP3 previews; {where}."
                     "</p><table id='audio-examples'><tr>"
                     "<th>class</th><th>mixture</th><th>interferer</th><th>mixture</th><th>reference</th>"
                     "<th>baseline</th><th>APT</th><th>SDR baseline / APT</th></tr>")
        spent = 0
        for row in examples.itertuples(index=False):
            cells = []
            for kind in ("mixture", "reference", "baseline", "apt"):
                rel = getattr(row, kind)
                uri = _preview(Path(examples_dir) / rel) if spent < PREVIEW_BUDGET_BYTES else ""
                spent += len(uri)
                link = f" <a href='examples/{e(rel)}'>wav</a>" if wav_links else ""
                if uri:
                    cells.append(f"<td><audio controls preload='metadata' src='{uri}'></audio>{link}</td>")
                else:
                    cells.append(f"<td><a href='examples/{e(rel)}'>{e(kind)}.wav</a></td>" if wav_links else
                                 f"<td>{e(kind)}.wav (in the report folder)</td>")
            players = "".join(cells)
            parts.append(f"<tr><td>{e(str(row.target_class))}</td><td>{e(str(row.mixture_id))}</td>"
                         f"<td>{e(str(row.interferer_class))}</td>{players}"
                         f"<td>{row.sdr_baseline:.2f} / {row.sdr_apt:.2f}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html_report(path, *args, **kwargs) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(render_html_report(*args, **kwargs), encoding="utf-8")
    return Path(path)


def _interval(row: dict, metric: str, sign: str = "") -> str:
    mean, low, high = (row.get(f"{metric}_{k}", np.nan) for k in ("mean", "low", "high"))
    if not np.isfinite(mean):
        return "n/a"
    spread = f" <span class='note'>[{low:{sign}.2f}, {high:{sign}.2f}]</span>" if np.isfinite(low) else ""
    return f"{mean:{sign}.2f}{spread}"


SWEEP_COLUMNS = (("baseline", "sdr_baseline_pooled_median", ""), ("APT", "sdr_apt_pooled_median", ""),
                 ("gain", "sdr_gain_pooled_median", "+"), ("baseline", "sdr_baseline_class_mean", ""),
                 ("APT", "sdr_apt_class_mean", ""), ("gain", "sdr_gain_class_mean", "+"),
                 ("SI-SDR gain", "si_sdr_gain_pooled_median", "+"))


def render_sweep_report(table: pd.DataFrame, tests: pd.DataFrame, targets: list[dict], cells: pd.DataFrame,
                        figure: Path | None, title: str, params: dict | None = None,
                        provenance: dict | None = None, scores: list[dict] | None = None) -> str:
    """The sweep's page: Table 2 (mean and 95% interval over seeds), the gain tests, the targets, the few-shot
    curve and every cell."""
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{STYLE}</style>"
             f"</head><body><h1>{e(title)}</h1>"]
    if params:
        plain = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in params.items()}
        parts.append("<p class='note'>" + ", ".join(f"{e(str(k))}={e(str(v))}" for k, v in sorted(plain.items())
                                                     if str(v) != "") + "</p>")
    if provenance:
        parts.append("<p class='note'>provenance: " + ", ".join(f"{e(k)}={e(str(v))}" for k, v in
                                                                 sorted(provenance.items())) + "</p>")
    parts.append("<h2>Table 2: median SDR (dB) by training clips per class</h2><p class='note'>Mean over seeds, "
                 "95% Student-t interval over seeds in brackets. Pooled: median over all test mixtures (the paper's "
                 "CSV row <code>avg(sample)</code>); class mean: mean of the class medians (<code>avg(class)</code>)."
                 "</p><table id='table2'><tr><th rowspan='2'>n_shot</th><th rowspan='2'>seeds</th>"
                 "<th colspan='3'>pooled median</th><th colspan='3'>mean of class medians</th><th rowspan='2'>"
                 "SI-SDR gain (pooled)</th></tr><tr>" + "".join(f"<th>{h}</th>" for h, _, _ in SWEEP_COLUMNS[:6])
                 + "</tr>")
    for row in table.to_dict("records"):
        parts.append(f"<tr><td>{e(str(row['n_shot']))}</td><td>{e(str(row['seeds']))}</td>"
                     + "".join(f"<td>{_interval(row, m, s)}</td>" for _, m, s in SWEEP_COLUMNS) + "</tr>")
    if scores:
        parts.append("</table><h2>Every score</h2><p class='note'>Mean over seeds: baseline -&gt; APT (gain), dB. SDRi "
                     "and SI-SDRi: the improvement over the mixture's own score (Le Roux et al. 2019 for SI-SDR). "
                     "Pooled: over all test mixtures; class mean: mean of the class medians.</p><table id='scores'>"
                     "<tr><th>n_shot</th><th>score</th>" + "".join(f"<th>{k.replace('_', ' ')}</th>" for k in STATISTICS)
                     + "</tr>")
        for r in scores:
            parts.append(f"<tr><td>{e(str(r['n_shot']))}</td><td>{e(r['score'])}</td>" + "".join(
                f"<td>{r[k][0]:.2f} -&gt; {r[k][1]:.2f} ({r[k][2]:+.2f})</td>" if k in r else "<td>n/a</td>"
                for k in STATISTICS) + "</tr>")
    parts.append("</table><h2>How sure the gain is</h2><p class='note'>The seeds share the test clips, so a test "
                 "clip (as target) is the unit. Paired bootstrap over test clips (the same clips drawn in every "
                 "seed, both systems' scores of a clip kept together), 95% percentile interval; Wilcoxon "
                 "signed-rank test of each clip's gain averaged over seeds; a class counts as improved (worse) "
                 "when its median gain, averaged over seeds, is above (below) 0.</p><table id='gain-tests'><tr>"
                 "<th>n_shot</th><th>test clips</th><th>pooled-median gain</th>"
                 "<th>mean per-mixture gain</th><th>Wilcoxon p</th><th>classes improved</th><th>classes worse</th>"
                 "</tr>")
    for r in tests.itertuples(index=False):
        parts.append(f"<tr><td>{e(str(r.n_shot))}</td><td>{r.n_test_clips}</td><td>{r.gain_pooled_median:+.2f} "
                     f"[{r.gain_pooled_median_low:+.2f}, {r.gain_pooled_median_high:+.2f}]</td><td>{r.gain_mean:+.2f} "
                     f"[{r.gain_mean_low:+.2f}, {r.gain_mean_high:+.2f}]</td><td>{_cell('{:.2g}', r.wilcoxon_p)}</td>"
                     f"<td>{r.classes_improved}/{r.n_classes}</td><td>{r.classes_worse}/{r.n_classes}</td></tr>")
    parts.append("</table><h2>Targets</h2><table id='targets'><tr><th>target</th><th>met</th><th>figures</th></tr>")
    for t in targets:
        met = {True: "yes", False: "no", None: "not measured"}[t["met"]]
        parts.append(f"<tr><td>{e(t['target'])}</td><td>{met}</td><td>{e(t['figures'])}</td></tr>")
    parts.append("</table>")
    if figure is not None:
        parts.append(f"<figure><img alt='few-shot curve' src='{_png(figure)}'><figcaption>Baseline and APT over "
                     "n_shot, mean over seeds with its 95% band</figcaption></figure>")
    parts.append("<h2>Cells</h2><table id='cells'><tr>" + "".join(f"<th>{e(c)}</th>" for c in cells.columns) + "</tr>")
    for row in cells.itertuples(index=False):
        parts.append("<tr>" + "".join(f"<td>{_cell('{:.2f}' if isinstance(v, float) else '{}', v)}</td>"
                                      for v in row) + "</tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts)
