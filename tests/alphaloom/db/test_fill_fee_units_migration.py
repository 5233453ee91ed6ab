"""Migration ``0027_fill_fee_units``: fills booked before it get the fee model of the broker that booked them (cash
at OANDA and Alpaca, units elsewhere), and the column then has no default, so a writer that leaves it out fails."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from support.migrations import database_at

from alphaloom.db import migrate

SEED = """
insert into audit.runs (run_id, flow) values ('r', 'test');
insert into audit.accounts (id, venue, base_currency, mode) values ('fx', 'oanda', 'USD', 'live'),
    ('us', 'alpaca', 'USD', 'live'), ('cx', 'binance', 'USDT', 'live');
insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action, score, config_version,
                             inputs)
values ('d-fx', 'r', 'fx', 'USD/JPY', '1h', now(), 'buy', 1, 't', '{}'), ('d-us', 'r', 'us', 'AAPL', '1h', now(),
        'buy', 1, 't', '{}'), ('d-cx', 'r', 'cx', 'BTC/USDT', '1h', now(), 'buy', 1, 't', '{}');
insert into audit.orders (client_order_id, decision_id, leg, run_id, account, venue, symbol, side, quantity,
                          reference_price, status)
values ('c-fx', 'd-fx', 0, 'r', 'fx', 'oanda', 'USD/JPY', 'buy', 1000, 155, 'filled'),
       ('c-us', 'd-us', 0, 'r', 'us', 'alpaca', 'AAPL', 'buy', 1, 190, 'filled'),
       ('c-cx', 'd-cx', 0, 'r', 'cx', 'binance', 'BTC/USDT', 'buy', 0.01, 87500, 'filled');
insert into audit.fills (fill_id, client_order_id, run_id, account, symbol, side, quantity, price, fee, fee_currency,
                         slippage, ts)
values ('c-fx-0', 'c-fx', 'r', 'fx', 'USD/JPY', 'buy', 1000, 155.135, 0.05, 'USD', 0, now()),
       ('c-us-0', 'c-us', 'r', 'us', 'AAPL', 'buy', 1, 190, 0.01, 'USD', 0, now()),
       ('c-cx-0', 'c-cx', 'r', 'cx', 'BTC/USDT', 'buy', 0.01, 87512, 0.00001, 'BTC', 0, now());
"""


def test_fills_booked_before_get_their_brokers_fee_model_and_new_ones_must_state_it(database_url) -> None:
    with database_at(database_url, "0026_venue_charges") as engine:
        with engine.begin() as conn:
            conn.exec_driver_sql(SEED)
        assert migrate.upgrade(engine) == migrate.head_revision()
        with engine.connect() as conn:
            models = dict(conn.execute(text("select fill_id, fee_from_units from audit.fills")).all())
        assert models == {"c-fx-0": False, "c-us-0": False, "c-cx-0": True}
        with engine.begin() as conn, pytest.raises(IntegrityError, match="fee_from_units"):
            conn.execute(text("""insert into audit.fills (fill_id, client_order_id, run_id, account, symbol, side,
                                     quantity, price, fee, fee_currency, slippage, ts)
                                 values ('c-cx-1', 'c-cx', 'r', 'cx', 'BTC/USDT', 'buy', 1, 1, 0, 'USDT', 0, now())"""))  # fmt: skip
