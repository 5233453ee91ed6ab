"""Every broker the operator's accounts use, built from settings and stored credentials: the paper broker (its durable
venue) and one ccxt broker per live or shadow account whose credentials are stored. For whole-system actions such as
cancelling open orders when the kill switch is turned on.

Exchanges are built by the one ccxt factory (``alphaloom.venues.ccxt_exchange``); ccxt (half a second to import) is
loaded only when a live or shadow broker is built, so paper runs never pay for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text

from alphaloom.domain import LIVE_MODES, AccountId, AccountMode, ClientOrderId, Symbol
from alphaloom.errors import AlphaLoomError
from alphaloom.ops.kill_switch import KillSwitchState, kill_switch_state
from alphaloom.settings import Settings
from alphaloom.venues.ccxt_exchange import ExchangeMaker, account_exchange, make_exchange
from execution.brokers.base import Broker
from execution.brokers.paper import PaperBroker, PostgresPaperVenue
from execution.brokers.shadow import ShadowBroker

if TYPE_CHECKING:
    from execution.brokers.alpaca_broker import AlpacaBroker
    from execution.brokers.ccxt_broker import CcxtBroker
    from execution.brokers.oanda_broker import OandaBroker

_exchange_maker: ExchangeMaker = make_exchange


@contextmanager
def use_exchange_maker(maker: ExchangeMaker) -> Iterator[None]:
    """Build every ccxt exchange of this process with ``maker(exchange_id, config)`` while the block runs (``config``
    holds the stored credentials). The one seam for pointing live brokers at a stand-in venue: the exchange is still
    a real ccxt exchange class, only its transport differs."""
    global _exchange_maker
    previous, _exchange_maker = _exchange_maker, maker
    try:
        yield
    finally:
        _exchange_maker = previous


def kill_switch_reader(engine: Engine) -> Callable[[], KillSwitchState]:
    def read() -> KillSwitchState:
        with engine.connect() as conn:
            return kill_switch_state(conn)

    return read


def symbol_reader(engine: Engine) -> Callable[[ClientOrderId], Symbol | None]:
    """The symbol of one of our orders (``audit.orders``, else its journaled attempt), for venues that look orders up
    per symbol."""

    def read(client_order_id: ClientOrderId) -> Symbol | None:
        with engine.connect() as conn:
            found = conn.execute(
                text("""select coalesce((select symbol from audit.orders where client_order_id = :c),
                                        (select details ->> 'symbol' from audit.submit_attempts
                                         where client_order_id = :c))"""),
                {"c": client_order_id},
            ).scalar()  # fmt: skip
        return None if found is None else Symbol(found)

    return read


def paper_broker(engine: Engine, settings: Settings) -> PaperBroker:
    return PaperBroker(
        fee_bps=settings.paper.fee_bps, slippage_bps=settings.paper.slippage_bps,
        kill_switch=kill_switch_reader(engine), venue=PostgresPaperVenue(engine),
        spread_bps=settings.paper.spread_bps, impact_bps=settings.paper.impact_bps,
        max_participation=settings.paper.max_participation,
    )  # fmt: skip


def decision_paper_broker(engine: Engine, settings: Settings) -> PaperBroker:
    """The paper broker of the decision flow as it has always filled: fee and slippage on the durable venue (the
    spread, impact and participation model of ``paper_broker`` is not applied there, so paper results keep
    comparing with earlier runs)."""
    return PaperBroker(fee_bps=settings.paper.fee_bps, slippage_bps=settings.paper.slippage_bps,
                       kill_switch=kill_switch_reader(engine), venue=PostgresPaperVenue(engine))  # fmt: skip


def shadow_broker(engine: Engine, settings: Settings, live: Broker) -> ShadowBroker:
    """``live`` sends; a paper broker with the settings' full fill model, on its own in-memory venue (it only
    shadows: nothing it does is booked), sees the same requests."""
    paper = PaperBroker(
        fee_bps=settings.paper.fee_bps, slippage_bps=settings.paper.slippage_bps,
        kill_switch=kill_switch_reader(engine), spread_bps=settings.paper.spread_bps,
        impact_bps=settings.paper.impact_bps, max_participation=settings.paper.max_participation,
    )  # fmt: skip
    return ShadowBroker(live, paper)


def ccxt_broker(engine: Engine, settings: Settings, account: AccountId, exchange_id: str) -> CcxtBroker | None:
    """The live broker of ``account`` at ``exchange_id``; None when no credentials are stored for it."""
    with engine.connect() as conn:
        exchange = account_exchange(conn, settings, exchange_id, account, make=_exchange_maker)
    if exchange is None:
        return None
    from execution.brokers.ccxt_broker import CcxtBroker

    return CcxtBroker(exchange, kill_switch=kill_switch_reader(engine), symbols=[Symbol(s) for s in settings.symbols],
                      symbol_of=symbol_reader(engine), account=account,
                      settle_seconds=settings.routing.resend_settle_seconds)  # fmt: skip


def alpaca_broker(engine: Engine, settings: Settings, account: AccountId, venue: str = "alpaca") -> AlpacaBroker | None:
    """``account``'s Alpaca broker (paper or live endpoint per ``ALPHALOOM_ALPACA_PAPER``); None when no keys are
    stored for it. alpaca-py is imported only here."""
    from alphaloom.venues.alpaca_client import alpaca_credentials, stock_data_client, trading_client
    from execution.brokers.alpaca_broker import AlpacaBroker

    with engine.connect() as conn:
        credentials = alpaca_credentials(conn, settings, account)
    if credentials is None:
        return None
    return AlpacaBroker(trading_client(credentials, settings.alpaca), kill_switch=kill_switch_reader(engine),
                        data=stock_data_client(credentials, settings.alpaca), feed=settings.alpaca.data_feed,
                        account=account, outside_session=settings.alpaca.outside_session,
                        extended_hours=settings.alpaca.extended_hours,
                        settle_seconds=settings.routing.resend_settle_seconds)  # fmt: skip


def oanda_broker(engine: Engine, settings: Settings, account: AccountId, venue: str = "oanda") -> OandaBroker | None:
    """``account``'s OANDA v20 broker (practice or live: the API address stored with its token); None when no keys
    are stored for it."""
    from execution.brokers.oanda_broker import OandaBroker, oanda_client_for

    with engine.connect() as conn:
        client = oanda_client_for(conn, settings, account)
    if client is None:
        return None
    return OandaBroker(client, kill_switch=kill_switch_reader(engine), account=account,
                       settle_seconds=settings.routing.resend_settle_seconds,
                       outside_session=settings.oanda.outside_session,
                       queue_band_bps=settings.oanda.queue_band_bps)  # fmt: skip


# Venues reached through their own SDK rather than ccxt: venue id -> builder (engine, settings, account, venue).
NATIVE_BROKERS: dict[str, Callable[[Engine, Settings, AccountId, str], Broker | None]] = {
    "alpaca": alpaca_broker,
    "oanda": oanda_broker,
}


def venue_broker(engine: Engine, settings: Settings, account: AccountId, venue: str) -> Broker | None:
    """The live broker of ``account`` at ``venue``: its native adapter where it has one, else ccxt's."""
    native = NATIVE_BROKERS.get(venue)
    if native is not None:
        return native(engine, settings, account, venue)
    return ccxt_broker(engine, settings, account, venue)


def all_brokers(engine: Engine, settings: Settings, errors: dict[str, str] | None = None) -> list[Broker]:
    """The paper broker and every live/shadow account's venue. A venue whose broker cannot be built (credentials that
    no longer decrypt, an unknown exchange) is left out and named in ``errors`` (``account@venue`` -> reason), so an
    emergency action such as the kill switch's cancels still reaches every other venue."""
    brokers: list[Broker] = [paper_broker(engine, settings)]
    with engine.connect() as conn:
        live: Sequence[tuple[str, str]] = conn.execute(
            text("select id, venue from audit.accounts where mode = any(:modes) order by id"),
            {"modes": sorted(m.value for m in LIVE_MODES)},
        ).all()
    for account, venue in live:
        try:
            broker = venue_broker(engine, settings, AccountId(account), venue)
        except AlphaLoomError as exc:
            if errors is None:
                raise
            errors[f"{account}@{venue}"] = f"{type(exc).__name__}: {exc}"
            continue
        if broker is not None:
            brokers.append(broker)
    return brokers


def broker_for_account(engine: Engine, settings: Settings, account: AccountId) -> Broker | None:
    """The broker that sends ``account``'s orders: the paper broker for a paper account, its venue's broker (Alpaca's
    own, else ccxt) for a live or shadow one (None when no credentials are stored for it)."""
    with engine.connect() as conn:
        row = conn.execute(text("select venue, mode from audit.accounts where id = :a"), {"a": account}).first()
    if row is None:
        return None
    if row.mode == AccountMode.PAPER:
        return paper_broker(engine, settings)
    return venue_broker(engine, settings, account, row.venue)
