"""Every broker the operator's accounts use, built from settings and stored credentials: the paper broker (its durable
venue) and one ccxt broker per live or shadow account whose credentials are stored. For whole-system actions such as
cancelling open orders when the kill switch is turned on."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, text

from alphaloom.domain import ClientOrderId
from alphaloom.guards import KillSwitchState, kill_switch_state
from alphaloom.ingest.ccxt_prices import make_exchange
from alphaloom.secrets import load_credentials
from alphaloom.settings import Settings
from execution.brokers.base import Broker
from execution.brokers.ccxt_broker import CcxtBroker
from execution.brokers.paper import PaperBroker, PostgresPaperVenue


def kill_switch_reader(engine: Engine) -> Callable[[], KillSwitchState]:
    def read() -> KillSwitchState:
        with engine.connect() as conn:
            return kill_switch_state(conn)

    return read


def symbol_reader(engine: Engine) -> Callable[[ClientOrderId], str | None]:
    """The symbol of one of our orders (``audit.orders``), for venues that look orders up per symbol."""

    def read(client_order_id: ClientOrderId) -> str | None:
        with engine.connect() as conn:
            return conn.execute(
                text("select symbol from audit.orders where client_order_id = :c"), {"c": client_order_id}
            ).scalar()

    return read


def paper_broker(engine: Engine, settings: Settings) -> PaperBroker:
    return PaperBroker(
        fee_bps=settings.paper_fee_bps, slippage_bps=settings.paper_slippage_bps,
        kill_switch=kill_switch_reader(engine), venue=PostgresPaperVenue(engine),
        spread_bps=settings.paper_spread_bps, impact_bps=settings.paper_impact_bps,
        max_participation=settings.paper_max_participation,
    )  # fmt: skip


def ccxt_broker(engine: Engine, settings: Settings, account: str, exchange_id: str) -> CcxtBroker | None:
    """The live broker of ``account`` at ``exchange_id``; None when no credentials are stored for it."""
    with engine.connect() as conn:
        credentials = load_credentials(conn, settings, exchange_id, account)
    if credentials is None:
        return None
    exchange = make_exchange(exchange_id, credentials.ccxt_config())
    return CcxtBroker(exchange, kill_switch=kill_switch_reader(engine), symbols=settings.symbols,
                      symbol_of=symbol_reader(engine), account=account)  # fmt: skip


def all_brokers(engine: Engine, settings: Settings) -> list[Broker]:
    brokers: list[Broker] = [paper_broker(engine, settings)]
    with engine.connect() as conn:
        live = conn.execute(
            text("select id, venue from audit.accounts where mode in ('live', 'shadow') order by id")
        ).all()
    for account, venue in live:
        broker = ccxt_broker(engine, settings, account, venue)
        if broker is not None:
            brokers.append(broker)
    return brokers


def broker_for_account(engine: Engine, settings: Settings, account: str) -> Broker | None:
    """The broker that sends ``account``'s orders: the paper broker for a paper account, its ccxt venue for a live or
    shadow one (None when no credentials are stored for it)."""
    with engine.connect() as conn:
        row = conn.execute(text("select venue, mode from audit.accounts where id = :a"), {"a": account}).first()
    if row is None:
        return None
    if row.mode == "paper":
        return paper_broker(engine, settings)
    return ccxt_broker(engine, settings, account, row.venue)
