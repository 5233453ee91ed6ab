"""Server-rendered SVG charts for the console (pure: values in, markup out; no script, no CDN)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape


def _points(values: Sequence[float], width: int, height: int, lo: float, hi: float, pad: int) -> str:
    span = (hi - lo) or 1.0
    n = max(len(values) - 1, 1)
    return " ".join(
        f"{pad + i * (width - 2 * pad) / n:.1f},{pad + (hi - v) / span * (height - 2 * pad):.1f}"
        for i, v in enumerate(values)
    )


def drawdown(values: Sequence[float]) -> list[float]:
    """Percent below the running peak at each point (0 at a new high, negative below it)."""
    out, peak = [], float("-inf")
    for v in values:
        peak = max(peak, v)
        out.append((v - peak) / peak * 100 if peak > 0 else 0.0)
    return out


def line_svg(
    series: Sequence[tuple[datetime, float]], *, title: str, width: int = 760, height: int = 180, fill: bool = False,
    unit: str = "",
) -> str:  # fmt: skip
    if len(series) < 2:
        return f'<svg class="chart" viewBox="0 0 {width} 40" role="img" aria-label="{escape(title)}">' \
               f'<text x="8" y="24">{escape(title)}: not enough points yet</text></svg>'  # fmt: skip
    values = [v for _, v in series]
    lo, hi, pad = min(values), max(values), 24
    pts = _points(values, width, height, lo, hi, pad)
    area = (
        f'<polygon points="{pad},{pad} {pts} {width - pad},{pad}" class="area"/>' if fill else ""
    )  # drawdown hangs from the zero line at the top
    first, last = series[0][0], series[-1][0]
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        f'<text x="{pad}" y="14" class="title">{escape(title)}</text>{area}'
        f'<polyline points="{pts}" class="line"/>'
        f'<text x="{width - pad}" y="14" text-anchor="end">max {hi:,.2f}{unit} · min {lo:,.2f}{unit} · last '
        f"{values[-1]:,.2f}{unit}</text>"
        f'<text x="{pad}" y="{height - 4}">{first:%Y-%m-%d %H:%M}</text>'
        f'<text x="{width - pad}" y="{height - 4}" text-anchor="end">{last:%Y-%m-%d %H:%M} UTC</text></svg>'
    )


def gauge_svg(value: float | None, marks: Sequence[tuple[str, float]], *, unit: str = "%", width: int = 420) -> str:
    """A horizontal bar from 0 to the largest mark with ``value`` drawn against labelled thresholds."""
    top = max([m for _, m in marks] + [value or 0.0]) * 1.1 or 1.0

    def x(v: float) -> float:
        return 10 + v / top * (width - 20)

    ticks = "".join(
        f'<line x1="{x(m):.1f}" x2="{x(m):.1f}" y1="6" y2="34" class="limit"/>'
        f'<text x="{x(m):.1f}" y="46" text-anchor="middle">{escape(name)} {m:g}{unit}</text>'
        for name, m in marks
    )
    bar = (
        f'<rect x="10" y="12" width="{x(value) - 10:.1f}" height="16" class="value"/>'
        if value is not None
        else '<text x="12" y="26">no value yet</text>'
    )
    return f'<svg class="gauge" viewBox="0 0 {width} 50">{bar}{ticks}</svg>'
