"""A worker process for the crash-recovery test: executes a list of intents one transaction each against the durable
paper venue, and optionally parks itself at a chosen point so the test can SIGKILL it there.

Usage: python tests/support/crash_worker.py SPEC.json  (spec: account, run_id, intents, stop_at, stage, signal, and optionally
``binance_state``: a file holding the book of a binance venue served to ccxt's real binance class, used instead of the
paper venue; or ``oanda_url``: a v20 stand-in (``oanda_standin.py``) the OANDA broker sends to; or ``alpaca_url`` (and
``alpaca_now``, the venue's time): a running Alpaca stand-in reached through alpaca-py)
Stages: ``after_journal`` (attempt committed, venue not called), ``after_submit`` (venue has the order, nothing
recorded), ``before_commit`` (recorded in the open transaction, not committed).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from alphaloom.db.engine import get_engine
from alphaloom.domain import DecisionId, OrderIntent, Side
from alphaloom.ops.kill_switch import KillSwitchState
from alphaloom.settings import Settings
from execution.brokers.base import BrokerReport, OrderRequest
from execution.brokers.ccxt_broker import CcxtBroker
from execution.brokers.oanda_broker import OandaBroker
from execution.brokers.paper import PaperBroker, PostgresPaperVenue
from execution.submit import execute


def park(signal: str) -> None:
    Path(signal).write_text("parked")
    while True:  # wait here to be killed
        time.sleep(60)


class ParkingBroker:
    def __init__(self, inner: PaperBroker, spec: dict) -> None:
        self.inner, self.spec, self.name, self.live = inner, spec, inner.name, inner.live
        self.index = -1

    def submit(self, request: OrderRequest) -> BrokerReport:
        if self.index == self.spec["stop_at"] and self.spec["stage"] == "after_journal":
            park(self.spec["signal"])
        report = self.inner.submit(request)
        if self.index == self.spec["stop_at"] and self.spec["stage"] == "after_submit":
            park(self.spec["signal"])
        return report

    def lookup(self, client_order_id):  # type: ignore[no-untyped-def]
        return self.inner.lookup(client_order_id)


def binance_on_file(state: str) -> CcxtBroker:
    """A fresh ccxt binance broker (no memory of earlier processes) on the venue book kept in ``state``."""
    from ccxt_replay import DurableBinanceSpotVenue, mount

    from alphaloom.venues.ccxt_exchange import make_exchange

    exchange = make_exchange(
        "binance",
        {"enableRateLimit": False, "apiKey": "test-key", "secret": "test-secret",
         "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False}},
    )  # fmt: skip
    mount(exchange, DurableBinanceSpotVenue(Path(state), {"BTCUSDT": "87512.00"}).routes())
    return CcxtBroker(
        exchange, kill_switch=lambda: KillSwitchState(False, "", ""), symbols=["BTC/USDT"], settle_seconds=0
    )


def alpaca_at(url: str, now: str) -> object:
    """A fresh Alpaca broker (no memory of earlier processes) on the stand-in at ``url``, its clock fixed at ``now``."""
    from alpaca_standin import KEY, SECRET

    from alphaloom.ops.secrets import Credentials
    from alphaloom.settings import AlpacaSettings
    from alphaloom.venues.alpaca_client import stock_data_client, trading_client
    from execution.brokers.alpaca_broker import AlpacaBroker

    keys, settings = Credentials("alpaca", "crash", KEY, SECRET), AlpacaSettings(trading_url=url, data_url=url)
    at = datetime.fromisoformat(now)
    return AlpacaBroker(trading_client(keys, settings), kill_switch=lambda: KillSwitchState(False, "", ""),
                        data=stock_data_client(keys, settings), settle_seconds=0, clock=lambda: at)  # fmt: skip


def oanda_at(url: str) -> OandaBroker:
    """A fresh OANDA broker (no memory of earlier processes) sending to the v20 stand-in at ``url``."""
    from oanda_standin import ACCOUNT_ID, TOKEN

    from alphaloom.venues.oanda_client import OandaClient, OandaConfig

    client = OandaClient(OandaConfig(url, TOKEN, ACCOUNT_ID))
    return OandaBroker(client, kill_switch=lambda: KillSwitchState(False, "", ""), settle_seconds=0)


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    engine = get_engine()
    settings = Settings()
    inner: PaperBroker | CcxtBroker = PaperBroker(
        fee_bps=Decimal(10),
        slippage_bps=Decimal(5),
        kill_switch=lambda: KillSwitchState(False, "", ""),
        venue=PostgresPaperVenue(engine),
    )
    if spec.get("binance_state"):
        inner = binance_on_file(spec["binance_state"])
    if spec.get("alpaca_url"):
        inner = alpaca_at(spec["alpaca_url"], spec["alpaca_now"])  # type: ignore[assignment]
    if spec.get("oanda_url"):
        inner = oanda_at(spec["oanda_url"])  # type: ignore[assignment]
    broker = ParkingBroker(inner, spec)
    event_time = datetime.fromisoformat(spec["event_time"])
    for index, raw in enumerate(spec["intents"]):
        broker.index = index
        intent = OrderIntent(DecisionId(raw["decision_id"]), spec["account"], raw["symbol"], Side(raw["side"]),
                             Decimal(raw["quantity"]), Decimal(raw["price"]))  # fmt: skip
        with engine.begin() as conn:
            execute(conn, [intent], run_id=spec["run_id"], broker=broker, settings=settings, event_time=event_time)
            if index == spec["stop_at"] and spec["stage"] == "before_commit":
                park(spec["signal"])
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
