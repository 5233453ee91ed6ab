"""`alphaloom explain ORDER_ID`: why we traded, from the order back to the bars, news and flow runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.tree import Tree

from alphaloom.cli._app import app, console, engine, styled
from alphaloom.settings import get_settings, prefect_api_url


def add_debate(node: Tree, turns: list[Any]) -> None:
    """The LLM team's debate under ``node``, turn by turn (nothing for the single analyst)."""
    if not turns:
        return
    debate = node.add(f"LLM debate ({len(turns)} turns)")
    for t in turns:
        if t.kind == "message" and not t.gist.startswith("assistant"):
            continue  # the prompts: in audit.llm_transcripts
        debate.add(f"{t.role} {t.kind.replace('_', ' ')}: {t.gist}")


def add_config(node: Tree, decision: Any) -> None:
    """The decision's configuration under ``node``: its version and what it names (``audit.decision_configs``)."""
    config = decision.config
    node.add(f"config {decision.config_version}: "
             + ("not recorded" if config is None else json.dumps(config, sort_keys=True)))  # fmt: skip


def add_text_evidence(node: Tree, chain: Any) -> None:
    """The earnings report and the social posts the decision read under ``node`` (nothing when it read none)."""
    report = chain.earnings
    if report is not None:
        figures = ", ".join(f"{name} {fig.get('actual')} vs {fig.get('estimate')} ({fig.get('outcome')})"
                            for name, fig in (("EPS", report.eps), ("revenue", report.revenue)) if fig)  # fmt: skip
        node.add(f"earnings report {report.news_id}: {report.title or '(row missing)'} — {figures or 'no figures'}; "
                 f"guidance {report.guidance or '-'}")  # fmt: skip
    if chain.social:
        social = node.add(f"social posts ({len(chain.social)})")
        for p in chain.social:
            social.add(f"{p.first_seen_at:%Y-%m-%d %H:%M} {'kept' if p.kept else 'spam'}: {p.title} "
                       f"({', '.join(p.sources)}; run {p.run_id})")  # fmt: skip


@app.command()
def explain(
    order_id: str = typer.Argument(..., help="Client order id (see `alphaloom pnl`) or decision id (`decisions`)."),
    html: bool = typer.Option(False, "--html", help="Also write the chain as a self-contained HTML page."),
    out: Path = typer.Option(None, help="Where to write the page (default: $ALPHALOOM_HOME/explain/ORDER.html)."),
) -> None:
    """The chain order -> decision -> agent outputs -> feature row -> bars and news -> flow runs; for a decision id,
    the chain decision -> opinions -> vote -> risk checks -> the orders or why none was made."""
    from alphaloom.cli.decisions import explain_decision, resolve_decision
    from alphaloom.errors import NotFoundError
    from alphaloom.records.orders import order_exists
    from alphaloom.reporting.explain import explain_order, price_window

    with engine().connect() as conn:
        is_order = order_exists(conn, order_id)
        decision_id = None if is_order else resolve_decision(conn, order_id)
    if decision_id is not None and not html:
        explain_decision(decision_id)
        return
    with engine().connect() as conn:
        try:
            chain = explain_order(conn, order_id)
        except NotFoundError:
            from alphaloom.cli._checks import refuse

            refuse(f"{order_id!r} is neither a client order id nor a decision id (see `alphaloom pnl`, "
                   "`alphaloom decisions`)")  # fmt: skip
        window = []
        if chain.decision is not None and chain.features is not None:
            key = chain.features.key
            window = price_window(conn, exchange=key.get("exchange", get_settings().exchange), symbol=chain.order.symbol,
                                  timeframe=chain.decision.timeframe, as_of=chain.decision.as_of)  # fmt: skip

    o, d = chain.order, chain.decision
    # Every value below may come from outside (symbols, agent rationales, LLM output, risk reasons, headlines): the
    # console prints it as text (markup off), emphasis is a style on our own words only.
    tree = Tree(styled((f"order {o.client_order_id}", "bold"), f": {o.side} {o.quantity} {o.symbol} ({o.status}) "
                       f"run {o.run_id}"))  # fmt: skip
    for f in o.fills:
        fee = f"{f.fee:.8f}".rstrip("0").rstrip(".")  # display only: the stored fee stays exact
        tree.add(f"fill {f.fill_id}: {f.quantity} @ {f.price} fee {fee} {f.fee_currency} at {f.ts:%Y-%m-%d %H:%M}")
    if d is not None:
        node = tree.add(
            styled(
                (f"decision {d.decision_id}", "bold"),
                f" at {d.as_of:%Y-%m-%d %H:%M} UTC: {d.action} (score {d.score:+.3f}), "
                f"config {d.config_version}, git {(d.git_sha or '-')[:12]}, run {d.run_id}",
            )
        )
        add_config(node, d)
        agents = node.add("agent outputs")
        for a in chain.agent_outputs:
            agents.add(f"{a.agent}: {a.action} ({a.confidence:.2f}){' skipped' if a.skipped else ''} model={a.model} "
                       f"prompt_hash={a.prompt_hash} tokens={a.tokens} — {a.rationale}")  # fmt: skip
        add_debate(node, chain.debate)
        risk = node.add("risk checks")
        for r in chain.risk_checks:
            verdict = ("ok", "green") if r.approved else ("denied", "red")
            risk.add(styled(verdict, f" {r.check_name}: {r.reason} {json.dumps(r.numbers, sort_keys=True)}"))
        if chain.features is not None:
            feat = chain.features
            fnode = node.add(f"feature row {feat.dbt_model} {feat.key} (dbt invocation {feat.dbt_invocation_id}, "
                             f"project git {(feat.git_sha or '-')[:12]})")  # fmt: skip
            for b in chain.bars:
                fnode.add(f"bar raw.ohlcv {b.symbol} {b.ts:%Y-%m-%d %H:%M}: O {b.open} H {b.high} L {b.low} "
                          f"C {b.close} V {b.volume} (run {b.run_id})")  # fmt: skip
        news = node.add(f"news ({len(chain.news)})")
        for n in chain.news:
            news.add(f"{n.first_seen_at:%Y-%m-%d %H:%M} {n.label} {n.score}: {n.title} (run {n.run_id})")
        add_text_evidence(node, chain)
    console.print(tree)
    runs = Table("wrote", "flow", "run id", "status", "started", "git sha", title="flow runs behind it")
    for r in chain.runs:
        runs.add_row(r.role + (" (inferred)" if r.inferred else ""), r.flow, r.run_id, r.status,
                     f"{r.started_at:%Y-%m-%d %H:%M:%S}", (r.git_sha or "")[:12])  # fmt: skip
    console.print(runs)
    if chain.missing:
        console.print(f"incomplete chain: missing {', '.join(chain.missing)}", style="yellow")
    if html:
        from alphaloom.reporting.explain_html import render_html

        api = prefect_api_url()
        page = render_html(chain, window, prefect_ui=api.removesuffix("/api") if api else None)
        target = out or get_settings().home / "explain" / f"{o.client_order_id}.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(page, encoding="utf-8")
        console.print(f"HTML: {target.resolve()}")
