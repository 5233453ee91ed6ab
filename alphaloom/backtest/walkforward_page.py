"""The walk-forward page: one self-contained HTML file (inline CSS and SVG, no script, no CDN), in the style of
``alphaloom.reporting.report``. Pure: a ``WalkForwardResult`` in, text out (``write_walk_forward_page`` writes it).

It shows the chained out-of-sample equity curve with each window's stretch shaded and labelled with the parameters
chosen for it, its drawdown, the metrics of that curve, and a table with one row per window: the in-sample range and
choice with its in-sample score beside the out-of-sample score, return and fills (the gap between the two is the
point of a walk-forward).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from alphaloom.backtest.walkforward import WalkForwardResult
from alphaloom.reporting.report import CSS, _metrics_table, drawdown_series

PAGE_CSS = (
    CSS
    + """
.band-label{font-size:11px;fill:#34405a} .axis{font-size:11px;fill:#5b6478}
td.pos{color:#137333} td.neg{color:#b3261e} .wide{flex:1 1 100%} td.t{white-space:nowrap}
"""
)


def _fmt_time(value: object) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M")  # type: ignore[arg-type]


def _number(value: float, percent: bool = False) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:+.2%}" if percent else f"{value:,.4f}"


def _choice(window: Mapping[str, object]) -> str:
    """The parameters a window chose: its ``choice`` (the team walk-forward's label), else ``fast/slow``."""
    if "choice" in window:
        return str(window["choice"])
    return f"{window['fast']}/{window['slow']}"


def _bands(index: pd.Index, windows: pd.DataFrame, x_of: Callable[[float], float], height: int, labels: bool) -> str:
    """Each window's out-of-sample stretch: every other one shaded, a line where it starts, ``W<n> <choice>`` on top
    when ``labels`` and the stretch is wide enough to hold it."""
    parts = []
    for n, w in enumerate(windows.itertuples(), start=1):
        first = int(index.get_indexer([w.out_of_sample_start])[0])
        last = int(index.get_indexer([w.out_of_sample_end])[0])
        if first < 0 or last < 0:
            continue
        x0, x1 = x_of(max(first - 1, 0)), x_of(last)  # a stretch starts from the previous stretch's last value
        if n % 2:
            parts.append(f'<rect x="{x0:.1f}" y="0" width="{x1 - x0:.1f}" height="{height}" fill="#eef3fb"/>')
        parts.append(f'<line x1="{x0:.1f}" y1="0" x2="{x0:.1f}" y2="{height}" stroke="#c9d2e3" stroke-width="1"/>')
        label = f"W{n} {_choice(w._asdict())}"
        if labels and x1 - x0 >= 7 * len(label):
            parts.append(f'<text class="band-label" x="{x0 + 4:.1f}" y="14">{html.escape(label)}</text>')
    return "".join(parts)


def _chart(
    equity: pd.Series,
    windows: pd.DataFrame,
    values: np.ndarray,
    *,
    lo: float,
    hi: float,
    ticks: Sequence[tuple[float, str]],
    width: int,
    height: int,
    label: str,
    line: str,
    area_to: float | None = None,
    baseline: float | None = None,
    labels: bool = True,
    caption: str = "",
) -> str:
    """The frame both charts share (same geometry, so the drawdown lines up under the equity)."""

    def x_of(i: float) -> float:
        return i / (len(values) - 1) * width

    def y_of(v: float) -> float:
        return height - (v - lo) / (hi - lo) * height

    index = equity.index
    parts = [f'<svg width="{width + 90}" height="{height + (44 if caption else 26)}" '
             f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{html.escape(label)}">',
             f'<g transform="translate(80,6)"><rect width="{width}" height="{height}" fill="#fff" stroke="#e3e6ec"/>',
             _bands(index, windows, x_of, height, labels)]  # fmt: skip
    for value, text_ in ticks:
        parts.append(f'<line x1="0" y1="{y_of(value):.1f}" x2="{width}" y2="{y_of(value):.1f}" stroke="#e9ecf2"/>')
        parts.append(f'<text class="axis" x="-6" y="{y_of(value) + 4:.1f}" text-anchor="end">{text_}</text>')
    if baseline is not None:
        parts.append(f'<line x1="0" y1="{y_of(baseline):.1f}" x2="{width}" y2="{y_of(baseline):.1f}" '
                     'stroke="#9aa3b5" stroke-dasharray="4 3"/>')  # fmt: skip
    points = " ".join(f"{x_of(i):.1f},{y_of(v):.1f}" for i, v in enumerate(values))
    if area_to is not None:
        base = f"{y_of(area_to):.1f}"
        parts.append(f'<polygon points="0,{base} {points} {width},{base}" fill="{line}" opacity="0.18"/>')
    parts.append(f'<polyline points="{points}" fill="none" stroke="{line}" stroke-width="1.6"/>')
    parts.append(f'<text class="axis" x="0" y="{height + 16}">{_fmt_time(index[0])}</text>')
    parts.append(f'<text class="axis" x="{width}" y="{height + 16}" text-anchor="end">{_fmt_time(index[-1])}</text>')
    if caption:
        parts.append(f'<text class="axis" x="{width / 2:.0f}" y="{height + 32}" text-anchor="middle">'
                     f"{html.escape(caption)}</text>")  # fmt: skip
    parts.append("</g></svg>")
    return "".join(parts)


def equity_chart(equity: pd.Series, windows: pd.DataFrame, *, width: int = 1000, height: int = 260) -> str:
    """Inline SVG: the chained out-of-sample equity, each window's stretch shaded in turn and labelled
    ``W<n> <choice>`` (when it is wide enough to hold the label), the starting cash dashed, value and date axes."""
    values = equity.astype(float).to_numpy()
    if len(values) < 2:
        return "<p>(no data)</p>"
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    pad = (hi - lo) * 0.08 or 1.0
    ticks = [(v, f"{v:,.0f}") for v in (lo, (lo + hi) / 2, hi)]
    return _chart(equity, windows, values, lo=lo - pad, hi=hi + pad, ticks=ticks, width=width, height=height,
                  label="chained out-of-sample equity", line="#1f5fbf", baseline=float(values[0]),
                  caption="out-of-sample bars only; dashed: starting cash")  # fmt: skip


def drawdown_chart(equity: pd.Series, windows: pd.DataFrame, *, width: int = 1000, height: int = 110) -> str:
    """Inline SVG under the equity chart (same x axis): the drawdown from the running peak, shaded down from 0."""
    values = drawdown_series(equity).to_numpy()
    if len(values) < 2:
        return "<p>(no data)</p>"
    deepest = min(float(np.nanmin(values)), -1e-4)
    ticks = [(0.0, "0%"), (deepest, f"{deepest:.2%}")]
    return _chart(equity, windows, values, lo=deepest * 1.1, hi=-deepest * 0.08, ticks=ticks, width=width,
                  height=height, label="out-of-sample drawdown", line="#b3261e", area_to=0.0, labels=False)  # fmt: skip


def windows_table(windows: pd.DataFrame, objective: str) -> str:
    """One row per window: its in-sample range and choice, in-sample vs out-of-sample score, return and fills (with
    ``total_return`` as the objective the out-of-sample score is the return, shown once)."""
    if windows.empty:
        return "<p>(no windows)</p>"
    name = html.escape(objective.replace("_", " "))
    percent = objective == "total_return"
    chosen = "<th>parameters chosen</th>" if "choice" in windows.columns else "<th>fast</th><th>slow</th>"
    head = (f"<tr><th>#</th><th>in sample</th><th>out of sample</th>{chosen}"
            f"<th>in-sample {name}</th>" + ("" if percent else f"<th>out-of-sample {name}</th>")
            + "<th>out-of-sample return</th><th>fills</th></tr>")  # fmt: skip
    rows = []
    for n, w in enumerate(windows.to_dict("records"), start=1):
        oos_return = float(w["out_of_sample_return"])
        tone = "pos" if oos_return > 0 else "neg" if oos_return < 0 else ""
        oos_score = "" if percent else f"<td class='n'>{_number(float(w[f'out_of_sample_{objective}']))}</td>"
        choice = (f"<td>{html.escape(str(w['choice']))}</td>" if "choice" in w
                  else f"<td class='n'>{int(w['fast'])}</td><td class='n'>{int(w['slow'])}</td>")  # fmt: skip
        rows.append(
            f"<tr><td class='n'>{n}</td>"
            f"<td class='t'>{_fmt_time(w['in_sample_start'])} .. {_fmt_time(w['in_sample_end'])}</td>"
            f"<td class='t'>{_fmt_time(w['out_of_sample_start'])} .. {_fmt_time(w['out_of_sample_end'])}</td>"
            f"{choice}<td class='n'>{_number(float(w[f'in_sample_{objective}']), percent)}</td>{oos_score}"
            f"<td class='n {tone}'>{_number(oos_return, True)}</td>"
            f"<td class='n'>{int(w['out_of_sample_fills'])}</td></tr>"
        )
    return f"<table>{''.join([head, *rows])}</table>"


def _gap(windows: pd.DataFrame, objective: str) -> str:
    inside = windows[f"in_sample_{objective}"].astype(float)
    outside = windows[f"out_of_sample_{objective}"].astype(float)
    percent = objective == "total_return"
    return (f"Mean in-sample {objective.replace('_', ' ')} of the chosen parameters: {_number(inside.mean(), percent)}; "
            f"the same parameters out of sample: {_number(outside.mean(), percent)}.")  # fmt: skip


def render_walk_forward_html(
    result: WalkForwardResult,
    *,
    title: str,
    objective: str,
    setup: Mapping[str, object],
    notes: Sequence[str] = (),
    sections_html: Sequence[str] = (),
) -> str:
    """The page's HTML. ``setup``: what the run was asked (symbols, windows, grid...), shown as given;
    ``sections_html``: further cards already rendered (the analysts' out-of-sample contribution)."""
    windows = result.windows
    setup_rows = "".join(
        f"<tr><th>{html.escape(str(k).replace('_', ' '))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in setup.items()
    )
    all_notes = [
        "Out-of-sample results only: each window's parameters were chosen on its in-sample bars and traded "
        "unchanged on the bars after them; each stretch starts flat, and the stretches are chained into one curve. "
        "In-sample scores are shown only to show the gap.",
        *notes,
    ]
    notes_html = "".join(f"<li>{html.escape(n)}</li>" for n in all_notes)
    metrics = result.out_of_sample.as_dict()
    drawdown = drawdown_chart(result.out_of_sample_equity, windows)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{PAGE_CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<div class="sub">{len(windows)} windows, {len(result.out_of_sample_equity) - 1} out-of-sample bars,
{len(result.out_of_sample_trades)} out-of-sample fills</div>
<ul class="notes">{notes_html}</ul>
<div class="grid"><div class="card"><h2>Out-of-sample metrics (windows chained)</h2>{_metrics_table(metrics)}</div>
<div class="card"><h2>Setup</h2><table>{setup_rows}</table></div></div>
<div class="grid"><div class="card wide"><h2>Chained out-of-sample equity</h2>
{equity_chart(result.out_of_sample_equity, windows)}
<h2>Drawdown</h2>{drawdown}</div></div>
{f'<div class="grid">{"".join(sections_html)}</div>' if sections_html else ""}
<h2>Windows</h2><p class="sub">{html.escape(_gap(windows, objective)) if not windows.empty else ""}</p>
{windows_table(windows, objective)}
</body></html>"""


def write_walk_forward_page(result: WalkForwardResult, folder: Path, **kwargs: object) -> Path:
    """``folder/walk_forward.html`` (folders created); keyword arguments as ``render_walk_forward_html``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "walk_forward.html"
    path.write_text(render_walk_forward_html(result, **kwargs), encoding="utf-8")  # type: ignore[arg-type]
    return path
