"""`alphaloom decisions` (a table of recorded decisions) and the decision half of `alphaloom explain`."""

from __future__ import annotations

import json
from datetime import datetime

import typer
from rich.tree import Tree

from alphaloom.cli._app import app, console, engine, styled


@app.command()
def decisions(
    run: str = typer.Option(None, "--run", help="Only this run's decisions (see `alphaloom runs`)."),
    symbol: str = typer.Option(None, "--symbol", help="Only this symbol."),
    since: datetime = typer.Option(None, "--since", help="Only decisions at or after this UTC time."),
    limit: int = typer.Option(50, help="At most this many (newest first)."),
) -> None:
    """Recorded decisions: action, score, votes, and the order made or why none was."""
    from alphaloom.cli._checks import positive, utc
    from alphaloom.cli.pipeline import print_decisions
    from alphaloom.domain import Symbol
    from alphaloom.reporting.decision_summary import summaries

    positive(limit, "--limit")
    with engine().connect() as conn:
        found = summaries(conn, run_id=run, symbol=Symbol(symbol) if symbol else None, since=utc(since), limit=limit)
    if not found:
        console.print("no decisions recorded" + "".join(f" {k} {v}" for k, v in
                      (("for run", run), ("for", symbol), ("since", since)) if v))  # fmt: skip
        return
    print_decisions(found, title="audit.decisions (newest first; `alphaloom explain DECISION_ID`)")


def resolve_decision(conn, identifier: str) -> str | None:  # type: ignore[no-untyped-def]
    """The decision id ``identifier`` names (a full id or a unique prefix of at least 8 characters), else None."""
    from alphaloom.records.decisions import decision_ids_with_prefix

    if len(identifier) < 8:
        return None
    ids = decision_ids_with_prefix(conn, identifier)
    return ids[0] if len(ids) == 1 else None


def explain_decision(decision_id: str) -> None:
    """The chain decision -> agent opinions -> vote -> every risk check -> the orders, or why none was made."""
    from alphaloom.reporting.decision_summary import summaries, why

    with engine().connect() as conn:
        (d,) = summaries(conn, decision_ids=[decision_id])
    threshold = f", threshold ±{d.threshold:g}" if d.threshold is not None else ""
    tree = Tree(styled((f"decision {d.decision_id}", "bold"), f" {d.symbol} at {d.as_of:%Y-%m-%d %H:%M} UTC for "
                       f"{d.account}: {d.action} (score {d.score:+.3f}{threshold}), run {d.run_id}"))  # fmt: skip
    if d.known_at is not None:
        tree.add(f"feature row known at {d.known_at:%Y-%m-%d %H:%M} UTC; position before: {d.position:f}")
    votes = tree.add("agent opinions")
    for v in d.votes:
        votes.add(f"{v.agent}: {'skipped' if v.skipped else f'{v.action} ({v.confidence:.2f})'} - {v.rationale}")
    from alphaloom.cli.explain import add_config, add_debate, add_text_evidence
    from alphaloom.reporting.explain import explain_decision as decision_chain

    with engine().connect() as conn:
        chain = decision_chain(conn, decision_id)
    if chain.decision is not None:
        add_config(tree, chain.decision)
    add_debate(tree, chain.debate)
    add_text_evidence(tree, chain)
    checks = tree.add("risk checks")
    for c in d.checks:
        mark = ("ok", "green") if c.approved else ("denied", "red")
        checks.add(styled(mark, f" {c.check_name}: {c.reason} {json.dumps(c.numbers, sort_keys=True)}"))
    for t in d.trips:
        checks.add(styled(("execution guard", "red"), f" {t.check_name}: {t.reason}"))
    outcome = tree.add("orders" if d.orders else "no order")
    outcome.add(why(d))
    console.print(tree)
