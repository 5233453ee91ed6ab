"""Self-contained HTML performance reports (inline CSS and SVG, no CDN) plus PNG charts beside them.

The same report serves backtests and paper/live accounts: it takes an equity curve, an optional benchmark, metrics,
per-asset P&L, the trade list and free-text notes (e.g. "LLM opinions from cache only", "assumed first-seen times").
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#1d2330;background:#fafbfc}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px;color:#34405a}
.sub{color:#5b6478;margin-bottom:12px} .notes li{color:#7a4b00}
table{border-collapse:collapse;font-size:13px;background:#fff} td,th{padding:4px 10px;border-bottom:1px solid #e3e6ec}
th{text-align:left;background:#f0f2f6} td.n{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:flex;flex-wrap:wrap;gap:16px} .card{background:#fff;border:1px solid #e3e6ec;border-radius:6px;padding:12px}
.pos{color:#137333} .neg{color:#b3261e}
"""


@dataclass(frozen=True)
class ReportData:
    title: str
    subtitle: str
    equity: pd.Series
    metrics: Mapping[str, float | int]
    trades: pd.DataFrame
    per_asset_pnl: pd.Series
    benchmark: pd.Series | None = None
    attribution: Mapping[str, pd.Series] = field(default_factory=dict)
    notes: Sequence[str] = ()
    # Positions still held at the end (marked to the last close) and every fill, so a run whose positions never
    # closed does not read as "no trades".
    open_positions: pd.DataFrame | None = None
    fills: pd.DataFrame | None = None
    # Further cards, already rendered (the analysts' contribution: alphaloom.reporting.agent_contribution).
    sections_html: Sequence[str] = ()


def _polyline(values: np.ndarray, width: int, height: int, lo: float, hi: float) -> str:
    if len(values) < 2 or hi <= lo:
        return ""
    xs = np.linspace(0, width, len(values))
    ys = height - (values - lo) / (hi - lo) * height
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))


def line_chart(series: Mapping[str, pd.Series], *, width: int = 900, height: int = 240, fill: bool = False) -> str:
    """An inline SVG line chart of one or more aligned series, with min/max labels and a legend."""
    colours = ["#1f5fbf", "#9aa3b5", "#b3261e"]
    arrays = {name: s.astype(float).to_numpy() for name, s in series.items() if len(s)}
    if not arrays:
        return "<p>(no data)</p>"
    lo = min(float(np.nanmin(a)) for a in arrays.values())
    hi = max(float(np.nanmax(a)) for a in arrays.values())
    pad = (hi - lo) * 0.05 or 1.0
    lo, hi = lo - pad, hi + pad
    parts = [f'<svg width="{width + 80}" height="{height + 30}" xmlns="http://www.w3.org/2000/svg">',
             f'<g transform="translate(70,10)"><rect width="{width}" height="{height}" fill="#fff" stroke="#e3e6ec"/>']  # fmt: skip
    for i, (name, values) in enumerate(arrays.items()):
        points = _polyline(np.nan_to_num(values, nan=lo), width, height, lo, hi)
        colour = colours[i % len(colours)]
        if fill:
            parts.append(f'<polygon points="0,{height} {points} {width},{height}" fill="{colour}" opacity="0.15"/>')
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        parts.append(
            f'<text x="{10 + 160 * i}" y="{height + 18}" font-size="12" fill="{colour}">{html.escape(name)}</text>'
        )
    parts.append(f'<text x="-6" y="10" font-size="11" text-anchor="end">{hi:,.2f}</text>')
    parts.append(f'<text x="-6" y="{height}" font-size="11" text-anchor="end">{lo:,.2f}</text>')
    parts.append("</g></svg>")
    return "".join(parts)


def bar_chart(values: pd.Series, *, width: int = 600, bar_height: int = 22) -> str:
    """Horizontal bars for P&L by label; green positive, red negative."""
    if values.empty:
        return "<p>(no trades)</p>"
    span = float(values.abs().max()) or 1.0
    half = width / 2
    height = bar_height * len(values) + 10
    parts = [
        f'<svg width="{width + 160}" height="{height}" xmlns="http://www.w3.org/2000/svg"><g transform="translate(150,5)">'
    ]
    for i, (label, value) in enumerate(values.items()):
        length = abs(float(value)) / span * (half - 10)
        x = half if value >= 0 else half - length
        colour = "#137333" if value >= 0 else "#b3261e"
        y = i * bar_height
        parts.append(f'<rect x="{x:.1f}" y="{y}" width="{length:.1f}" height="{bar_height - 6}" fill="{colour}"/>')
        parts.append(f'<text x="-8" y="{y + 12}" font-size="12" text-anchor="end">{html.escape(str(label))}</text>')
        # Labels sit right of the bar for gains and right of the axis for losses, so they never cover the names.
        label_x = half + length + 6 if value >= 0 else half + 6
        parts.append(f'<text x="{label_x:.1f}" y="{y + 12}" font-size="11">{float(value):,.2f}</text>')
    parts.append(f'<line x1="{half}" y1="0" x2="{half}" y2="{height}" stroke="#9aa3b5"/></g></svg>')
    return "".join(parts)


MONEY_COLUMNS = frozenset({"pnl", "fee", "notional", "market_value", "unrealised_pnl"})


def _table(frame: pd.DataFrame, limit: int = 500) -> str:
    """HTML table: money columns with 2 decimals, Decimals exact, other numbers with 6 significant digits, times as
    UTC minutes."""
    if frame.empty:
        return "<p>(none)</p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for _, row in frame.head(limit).iterrows():
        cells = []
        for column, value in row.items():
            numeric = isinstance(value, int | float | Decimal | np.number)
            if numeric and column in MONEY_COLUMNS:
                text = f"{float(value):,.2f}"
            elif isinstance(value, Decimal):  # quantities: exact, as booked
                text = f"{value:,f}"
            elif numeric:
                text = f"{float(value):,.6g}"
            elif isinstance(value, datetime):
                text = value.strftime("%Y-%m-%d %H:%M")
            else:
                text = html.escape(str(value))
            cells.append(f'<td class="n">{text}</td>' if numeric else f"<td>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = f"<p>{len(frame) - limit} more rows not shown.</p>" if len(frame) > limit else ""
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>{more}"


def _metrics_table(metrics: Mapping[str, float | int]) -> str:
    percent = {"total_return", "net_total_return", "annualised_return", "volatility", "max_drawdown", "win_rate",
               "exposure"}  # fmt: skip
    rows = []
    for key, value in metrics.items():
        shown = (f"{value:.2%}" if key in percent else f"{value:,.4f}" if key == "llm_spend"
                 else f"{value:,.3f}" if isinstance(value, float) else str(value))  # fmt: skip
        rows.append(f'<tr><th>{html.escape(key.replace("_", " "))}</th><td class="n">{shown}</td></tr>')
    return f"<table>{''.join(rows)}</table>"


def drawdown_series(equity: pd.Series) -> pd.Series:
    values = equity.astype(float)
    return values / values.cummax() - 1.0


def render_html(data: ReportData) -> str:
    curves = {"strategy": data.equity}
    if data.benchmark is not None:
        curves["buy & hold"] = data.benchmark
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in data.notes)
    attribution = "".join(
        f'<div class="card"><h2>P&amp;L by {html.escape(name)}</h2>{bar_chart(values)}</div>'
        for name, values in data.attribution.items()
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(data.title)}</title>
<style>{CSS}</style></head><body>
<h1>{html.escape(data.title)}</h1><div class="sub">{html.escape(data.subtitle)}</div>
{f'<ul class="notes">{notes}</ul>' if notes else ""}
<div class="grid"><div class="card"><h2>Metrics</h2>{_metrics_table(data.metrics)}</div>
<div class="card"><h2>Equity</h2>{line_chart(curves)}
<h2>Drawdown</h2>{line_chart({"drawdown": drawdown_series(data.equity)}, height=120, fill=True)}</div></div>
<div class="grid"><div class="card"><h2>P&amp;L by asset</h2>{bar_chart(data.per_asset_pnl)}</div>{attribution}</div>
{f'<div class="grid">{"".join(data.sections_html)}</div>' if data.sections_html else ""}
{_positions_and_fills(data)}<h2>Closed trades ({len(data.trades)})</h2>{_table(data.trades)}
</body></html>"""


def _positions_and_fills(data: ReportData) -> str:
    parts = []
    if data.open_positions is not None:
        parts.append(f"<h2>Open positions ({len(data.open_positions)})</h2>{_table(data.open_positions)}")
    if data.fills is not None:
        parts.append(f"<h2>Fills ({len(data.fills)})</h2>{_table(data.fills)}")
    return "".join(parts)


def write_pngs(data: ReportData, folder: Path) -> list[Path]:
    """Equity/drawdown and per-asset P&L as PNG files (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, height_ratios=[3, 1])
    top.plot(data.equity.index, data.equity.to_numpy(dtype=float), label="strategy")
    if data.benchmark is not None:
        top.plot(data.benchmark.index, data.benchmark.to_numpy(dtype=float), label="buy & hold", color="grey")
    top.set_title(data.title)
    top.legend()
    dd = drawdown_series(data.equity)
    bottom.fill_between(dd.index, dd.to_numpy(dtype=float), 0, color="firebrick", alpha=0.4)
    bottom.set_ylabel("drawdown")
    fig.tight_layout()
    paths.append(folder / "equity.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    if not data.per_asset_pnl.empty:
        fig, ax = plt.subplots(figsize=(8, 0.5 + 0.4 * len(data.per_asset_pnl)))
        values = data.per_asset_pnl.astype(float)
        ax.barh(
            [str(i) for i in values.index],
            values.to_numpy(),
            color=["green" if v >= 0 else "firebrick" for v in values],
        )
        ax.set_title("P&L by asset")
        fig.tight_layout()
        paths.append(folder / "pnl_by_asset.png")
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    return paths


def write_report(data: ReportData, folder: Path) -> Path:
    """Write ``report.html`` and the PNGs into ``folder`` (created); returns the HTML path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "report.html"
    path.write_text(render_html(data), encoding="utf-8")
    write_pngs(data, folder)
    return path
