"""An ``OrderChain`` as one self-contained HTML page: inline CSS and an inline SVG price chart, nothing fetched.

Pure rendering: callers pass the chain and the bars around the decision (``alphaloom.reporting.explain.price_window``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from html import escape
from typing import Any

from alphaloom.domain import quote_currency
from alphaloom.reporting.explain import BarRow, OrderChain

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:0 0 10px;color:#39435a}
.sub{color:#667085;margin-bottom:18px}.card{background:#fff;border:1px solid #e3e6ec;border-radius:8px;
padding:14px 16px;margin:0 0 14px}.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:8px}
.kv b{display:block;font-size:11px;text-transform:uppercase;color:#7a8499;font-weight:600}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eef0f4;
vertical-align:top}th{font-size:11px;text-transform:uppercase;color:#7a8499}code{font-size:12px;color:#3a4a6b;overflow-wrap:anywhere}
.buy{color:#067647;font-weight:600}.sell{color:#b42318;font-weight:600}.hold{color:#667085;font-weight:600}
.ok{color:#067647}.no{color:#b42318;font-weight:600}.pill{display:inline-block;padding:1px 8px;border-radius:10px;
background:#eef2ff;color:#3538cd;font-size:12px}.arrow{color:#98a2b3;margin:0 4px}.muted{color:#98a2b3}
"""


def _config(config: dict[str, Any] | None) -> str:
    """A decision's configuration, folded under its version (nothing when none was recorded)."""
    if config is None:
        return ""
    return f"<details><summary>configuration</summary><pre>{_e(json.dumps(config, indent=2, sort_keys=True))}</pre></details>"


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


# Risk-check numbers that are amounts of money (notionals, equity, cash, P&L, losses, fees): shown to the cent.
_MONEY_WORDS = ("notional", "equity", "cash", "pnl", "loss", "fee", "value", "exposure_amount", "var_amount")


def money(value: Any) -> str:
    """An amount of money to the cent (display only: stored values stay exact)."""
    try:
        return f"{Decimal(str(value)).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,.2f}"
    except (InvalidOperation, ValueError):
        return str(value)


def display_numbers(numbers: dict[str, Any]) -> dict[str, Any]:
    """A risk check's numbers for reading: money-named amounts rounded to cents, others as recorded."""
    shown: dict[str, Any] = {}
    for key, value in numbers.items():
        is_amount = isinstance(value, int | float | str) and not isinstance(value, bool)
        if is_amount and any(word in key.lower() for word in _MONEY_WORDS) and "pct" not in key.lower():
            rounded = money(value)
            shown[key] = rounded if rounded != str(value) or isinstance(value, int | float) else value
        else:
            shown[key] = value
    return shown


def _fee(fee: Any, currency: str, symbol: str) -> str:
    """A fee in the symbol's quote currency to the cent; one charged in another asset (BNB, the coin bought) as
    booked."""
    shown = money(fee) if currency == quote_currency(symbol, "") else str(fee)
    return f"{_e(shown)} {_e(currency)}"


def _ts(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _kv(pairs: Sequence[tuple[str, Any]]) -> str:
    return '<div class="grid">' + "".join(f'<div class="kv"><b>{_e(k)}</b>{v}</div>' for k, v in pairs) + "</div>"


def _action(value: str) -> str:
    return f'<span class="{_e(value)}">{_e(value)}</span>'


def price_chart_svg(bars: Sequence[BarRow], as_of: datetime, fill_price: float | None, width: int = 1040) -> str:
    """A close-price line with the decision time marked (bars after it were not known to the decision)."""
    if not bars:
        return '<p class="muted">no bars around the decision</p>'
    height, pad = 260, 40
    lows = [float(b.low) for b in bars]
    highs = [float(b.high) for b in bars]
    lo, hi = min(lows + ([fill_price] if fill_price else [])), max(highs + ([fill_price] if fill_price else []))
    span = (hi - lo) or 1.0
    t0, t1 = bars[0].ts.timestamp(), bars[-1].ts.timestamp()
    tspan = (t1 - t0) or 1.0

    def x(ts: float) -> float:
        return pad + (ts - t0) / tspan * (width - 2 * pad)

    def y(price: float) -> float:
        return height - pad - (price - lo) / span * (height - 2 * pad)

    parts = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="price chart">']
    parts.append(f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>')
    for k in range(5):
        price = lo + span * k / 4
        parts.append(
            f'<line x1="{pad}" x2="{width - pad}" y1="{y(price):.1f}" y2="{y(price):.1f}" stroke="#eef0f4"/>'
            f'<text x="4" y="{y(price) + 4:.1f}" font-size="10" fill="#98a2b3">{price:,.2f}</text>'
        )
    for b in bars:  # high-low wicks
        parts.append(
            f'<line x1="{x(b.ts.timestamp()):.1f}" x2="{x(b.ts.timestamp()):.1f}" y1="{y(float(b.high)):.1f}" '
            f'y2="{y(float(b.low)):.1f}" stroke="#d0d5dd"/>'
        )
    points = " ".join(f"{x(b.ts.timestamp()):.1f},{y(float(b.close)):.1f}" for b in bars)
    parts.append(f'<polyline points="{points}" fill="none" stroke="#3538cd" stroke-width="1.6"/>')
    ax = x(min(max(as_of.timestamp(), t0), t1))
    parts.append(
        f'<line x1="{ax:.1f}" x2="{ax:.1f}" y1="{pad / 2}" y2="{height - pad / 2}" stroke="#f79009" '
        f'stroke-dasharray="4 3"/><text x="{ax + 4:.1f}" y="{pad / 2 + 10}" font-size="11" fill="#b54708">'
        f"decision {_e(_ts(as_of))}</text>"
    )
    if fill_price is not None:
        parts.append(
            f'<circle cx="{ax:.1f}" cy="{y(fill_price):.1f}" r="4.5" fill="#067647"/>'
            f'<text x="{ax + 7:.1f}" y="{y(fill_price) + 14:.1f}" font-size="11" fill="#067647">fill '
            f"{fill_price:,.4f}</text>"
        )
    parts.append(
        f'<text x="{pad}" y="{height - 8}" font-size="10" fill="#98a2b3">{_e(_ts(bars[0].ts))}</text>'
        f'<text x="{width - pad}" y="{height - 8}" font-size="10" fill="#98a2b3" text-anchor="end">'
        f"{_e(_ts(bars[-1].ts))}</text></svg>"
    )
    return "".join(parts)


def _header(chain: OrderChain) -> str:
    """The title line (what the order was) and, when links are missing, which."""
    o = chain.order
    head = (
        f"<h1>Order {_e(o.client_order_id)}</h1>"
        f'<div class="sub">{_action(o.side)} {_e(o.quantity)} {_e(o.symbol)} on {_e(o.account)} ({_e(o.venue)}) '
        f'&middot; status <span class="pill">{_e(o.status)}</span></div>'
    )
    if chain.missing:
        head += f'<div class="card no">incomplete chain: missing {_e(", ".join(chain.missing))}</div>'
    return head


def _order_card(chain: OrderChain) -> str:
    """The order's numbers, its fills and every status change."""
    o = chain.order
    order_kv = [
        ("reference price", _e(o.reference_price)),
        ("filled", _e(o.filled_quantity)),
        ("created", _e(_ts(o.created_at))),
    ]
    for fill in o.fills:
        order_kv += [
            ("fill price", _e(fill.price)),
            ("fee", _fee(fill.fee, fill.fee_currency, o.symbol)),
            ("slippage", _e(fill.slippage)),
            ("filled at", _e(_ts(fill.ts))),
        ]
    events = "".join(
        f"<tr><td>{_e(e.event)}</td><td>{_e(e.from_status)}<span class=arrow>&rarr;</span>{_e(e.to_status)}</td>"
        f"<td>{_e(_ts(e.event_ts))}</td></tr>"
        for e in o.events
    )
    return (
        f'<div class="card"><h2>Order</h2>{_kv(order_kv)}'
        f"<table><tr><th>event</th><th>status</th><th>time</th></tr>{events}</table></div>"
    )


def _decision_cards(chain: OrderChain, window: Sequence[BarRow]) -> str:
    """The decision behind the order and the price around it (nothing when the order has no decision)."""
    o, d = chain.order, chain.decision
    if d is None:
        return ""
    fill_price = float(o.fills[0].price) if o.fills else None
    decision = (
        '<div class="card"><h2>Decision</h2>'
        + _kv(
            [
                ("decision", f"<code>{_e(d.decision_id)}</code>"),
                ("as of", _e(_ts(d.as_of))),
                ("action", _action(d.action)),
                ("consensus score", f"{d.score:+.3f}"),
                ("config version", f"<code>{_e(d.config_version)}</code>" + _config(d.config)),
                ("git sha", f"<code>{_e((d.git_sha or '')[:12])}</code>"),
                ("dbt invocation", f"<code>{_e(d.dbt_invocation_id)}</code>"),
            ]
        )
        + "</div>"
    )
    chart = f'<div class="card"><h2>Price around the decision</h2>{price_chart_svg(window, d.as_of, fill_price)}</div>'
    return decision + chart


def _table_card(title: str, headers: Sequence[str], rows: str) -> str:
    """A card: a heading and a table of ``rows`` (HTML, already escaped) under the given column headers."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    return f'<div class="card"><h2>{title}</h2><table><tr>{head}</tr>{rows}</table></div>'


def _opinions_card(chain: OrderChain) -> str:
    """Each agent's opinion: action, confidence, rationale, model and prompt hash."""
    if not chain.agent_outputs:
        return ""
    rows = "".join(
        f"<tr><td><b>{_e(a.agent)}</b></td><td>{_action(a.action)}{' <span class=muted>(skipped)</span>' if a.skipped else ''}"
        f"</td><td>{a.confidence:.2f}</td><td>{_e(a.rationale)}</td><td><code>{_e(a.model)}</code></td>"
        f"<td><code>{_e((a.prompt_hash or '')[:12])}</code></td><td>{_e(a.tokens)}</td></tr>"
        for a in chain.agent_outputs
    )
    headers = ("agent", "opinion", "confidence", "rationale", "model", "prompt hash", "tokens")
    return _table_card("Agent opinions", headers, rows)


def _debate_card(chain: OrderChain) -> str:
    """The LLM debate turn by turn (tool calls and the assistants' messages)."""
    if not chain.debate:
        return ""
    rows = "".join(
        f"<tr><td>{_e(t.role)}</td><td>{_e(t.kind.replace('_', ' '))}</td><td>{_e(t.gist)}</td></tr>"
        for t in chain.debate
        if t.kind != "message" or t.gist.startswith("assistant")
    )
    return _table_card("LLM debate, turn by turn", ("role", "turn", "what"), rows)


def _risk_card(chain: OrderChain) -> str:
    """Every risk check of the intent, its verdict and its numbers."""
    if not chain.risk_checks:
        return ""
    rows = "".join(
        f"<tr><td>{_e(r.check_name)}</td><td class={'ok' if r.approved else 'no'}>"
        f"{'approved' if r.approved else 'denied'}</td><td>{_e(r.reason)}</td>"
        f"<td><code>{_e(json.dumps(display_numbers(r.numbers), sort_keys=True))}</code></td></tr>"
        for r in chain.risk_checks
    )
    return _table_card("Risk checks", ("check", "verdict", "reason", "numbers"), rows)


def _features_card(chain: OrderChain) -> str:
    """The feature row the decision read, with where it came from."""
    feature = chain.features
    if feature is None:
        return ""
    shown = {k: v for k, v in feature.values.items() if v is not None}
    values = "".join(
        f"<tr><td>{_e(k)}</td><td>{v:,.6g}</td></tr>"
        if isinstance(v, int | float)
        else f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>"
        for k, v in shown.items()
    )
    return (
        '<div class="card"><h2>Feature row read</h2>'
        + _kv(
            [
                ("dbt model", f"<code>{_e(feature.dbt_model)}</code>"),
                ("bar", _e(feature.key.get("ts"))),
                ("known at", _e(feature.known_at)),
                ("dbt invocation", f"<code>{_e(feature.dbt_invocation_id)}</code>"),
                ("project git sha", f"<code>{_e((feature.git_sha or '')[:12])}</code>"),
            ]
        )
        + f"<table><tr><th>feature</th><th>value as read</th></tr>{values}</table></div>"
    )


def _news_card(chain: OrderChain) -> str:
    """The headlines the decision read, when first seen, their sentiment and feeds."""
    if not chain.news:
        return ""
    rows = "".join(
        f"<tr><td>{_e(_ts(n.first_seen_at))}{' <span class=muted>(assumed)</span>' if n.first_seen_assumed else ''}"
        f"</td><td>{_e(n.title)}</td><td>{_e(n.label)} {'' if n.score is None else f'{n.score:+.2f}'}</td>"
        f"<td>{_e(', '.join(n.sources))}</td></tr>"
        for n in chain.news
    )
    return _table_card("Headlines it read", ("first seen", "headline", "sentiment", "feeds"), rows)


def _figure(figure: dict[str, Any] | None) -> str:
    """``actual vs estimate (outcome, surprise)`` as the extractor recorded it; a dash when not stated."""
    if not figure:
        return "-"
    said = f"{figure.get('actual')}"
    if figure.get("estimate") is not None:
        said += f" vs estimate {figure.get('estimate')}"
    if figure.get("outcome"):
        surprise = figure.get("surprise_pct")
        said += f" ({figure.get('outcome')}{'' if surprise is None else f', {float(surprise):+.1f}%'})"
    return _e(said)


def _earnings_card(chain: OrderChain) -> str:
    """The earnings report behind the earnings analyst's opinion and what the extractor read in it."""
    report = chain.earnings
    if report is None:
        return ""
    return (
        '<div class="card"><h2>Earnings report it read</h2>'
        + _kv(
            [
                ("report", _e(report.title) if report.title is not None else "<span class=no>row missing</span>"),
                ("first seen", _e(report.first_seen_at)),
                ("news id", f"<code>{_e(report.news_id)}</code>"),
                ("EPS", _figure(report.eps)),
                ("revenue", _figure(report.revenue)),
                ("guidance", _e(report.guidance or "-")),
                ("stated outcome", _e(report.outcome_words or "-")),
                ("score", "-" if report.score is None else f"{report.score:+.2f}"),
            ]
        )
        + "</div>"
    )


def _social_card(chain: OrderChain) -> str:
    """The community posts the decision read, when first seen, their feeds and whether the spam filters kept them."""
    if not chain.social:
        return ""
    rows = "".join(
        f"<tr><td>{_e(_ts(p.first_seen_at))}{' <span class=muted>(assumed)</span>' if p.first_seen_assumed else ''}"
        f"</td><td>{_e(p.title)}</td><td>{_e(p.author or '')}</td><td>{_e(', '.join(p.sources))}</td>"
        f"<td class={'ok' if p.kept else 'no'}>{'kept' if p.kept else 'spam'}</td></tr>"
        for p in chain.social
    )
    return _table_card("Social posts it read", ("first seen", "post", "author", "feeds", "filter"), rows)


def _bars_card(chain: OrderChain) -> str:
    """The raw bar(s) behind the feature row."""
    if not chain.bars:
        return ""
    rows = "".join(
        f"<tr><td>{_e(_ts(b.ts))}</td><td>{_e(b.open)}</td><td>{_e(b.high)}</td><td>{_e(b.low)}</td>"
        f"<td>{_e(b.close)}</td><td>{_e(b.volume)}</td></tr>"
        for b in chain.bars
    )
    headers = ("bar open", "open", "high", "low", "close", "volume")
    return _table_card("Bar behind the features (raw.ohlcv)", headers, rows)


def _run_id_cell(run_id: str, prefect_ui: str | None) -> str:
    """A run id, linked to the Prefect UI's page of the run when one is configured."""
    if prefect_ui:
        return f'<a href="{_e(prefect_ui.rstrip("/"))}/runs/flow-run/{_e(run_id)}"><code>{_e(run_id)}</code></a>'
    return f"<code>{_e(run_id)}</code>"


def _runs_card(chain: OrderChain, prefect_ui: str | None) -> str:
    """The flow runs that wrote each link of the chain."""
    if not chain.runs:
        return ""
    rows = "".join(
        f"<tr><td>{_e(r.role)}</td><td>{_e(r.flow)}</td><td>{_run_id_cell(r.run_id, prefect_ui)}</td>"
        f"<td>{_e(r.status)}</td><td>{_e(_ts(r.started_at))}</td><td><code>{_e((r.git_sha or '')[:12])}</code></td>"
        f"<td>{'inferred' if r.inferred else ''}</td></tr>"
        for r in chain.runs
    )
    headers = ("wrote", "flow", "run", "status", "started", "git sha", "")
    return _table_card("Flow runs that wrote it", headers, rows)


def render_html(chain: OrderChain, window: Sequence[BarRow], prefect_ui: str | None = None) -> str:
    """The page an operator reads: order, decision, opinions, risk numbers, features, headlines, the earnings
    report and social posts, chart, runs."""
    sections = [
        _header(chain),
        _order_card(chain),
        _decision_cards(chain, window),
        _opinions_card(chain),
        _debate_card(chain),
        _risk_card(chain),
        _features_card(chain),
        _news_card(chain),
        _earnings_card(chain),
        _social_card(chain),
        _bars_card(chain),
        _runs_card(chain, prefect_ui),
    ]
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>AlphaLoom: why order '
        f"{_e(chain.order.client_order_id)}</title><style>{_CSS}</style></head><body><main>{''.join(sections)}</main>"
        "</body></html>"
    )
