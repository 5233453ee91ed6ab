"""Migration ``0029_decision_configs``: the configs decisions recorded in their inputs are backfilled once per version
(the old inputs kept as recorded); a version whose decisions recorded none gets no row; the downgrade puts the config
back into the inputs of the decisions recorded without it."""

from __future__ import annotations

import json

from sqlalchemy import text
from support.migrations import database_at, migrate_to

from alphaloom.db import migrate

A = {"consensus": {"threshold": 0.3}, "limits": {"max_order_notional": "1000"}}
B = {"consensus": {"threshold": 0.2}}
SEED = f"""
insert into audit.runs (run_id, flow) values ('r1', 'test'), ('r2', 'test');
insert into audit.accounts (id, venue, base_currency, mode) values ('acct', 'paper', 'USDT', 'paper');
insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of, action, score, config_version,
                             inputs, created_at)
values ('d-a1', 'r1', 'acct', 'X/USDT', '1h', now(), 'hold', 0, 'va', '{{"config": {json.dumps(A)}, "n": 1}}',
        now() - interval '2 hours'),
       ('d-a2', 'r2', 'acct', 'X/USDT', '1h', now(), 'hold', 0, 'va', '{{"config": {json.dumps(A)}, "n": 2}}',
        now() - interval '1 hour'),
       ('d-b', 'r2', 'acct', 'Y/USDT', '1h', now(), 'buy', 1, 'vb', '{{"config": {json.dumps(B)}}}', now()),
       ('d-r', 'r2', 'acct', 'Y/USDT', '1h', now(), 'sell', 0, 'recovered', '{{"recovered": true}}', now());
"""


def test_upgrade_backfills_each_versions_config_once_and_downgrade_puts_it_back(database_url) -> None:
    with database_at(database_url, "0028_route_leg_rate") as engine:
        with engine.begin() as conn:
            conn.exec_driver_sql(SEED)
            before = dict(conn.execute(text("select decision_id, inputs from audit.decisions")).all())
        assert migrate.upgrade(engine) == migrate.head_revision()
        with engine.begin() as conn:
            rows = {r.config_version: (r.config, r.run_id) for r in conn.execute(
                text("select config_version, config, run_id from audit.decision_configs"))}  # fmt: skip
            assert rows == {"va": (A, "r1"), "vb": (B, "r2")}  # the first run of each; none for 'recovered'
            assert dict(conn.execute(text("select decision_id, inputs from audit.decisions")).all()) == before
            conn.execute(text("""insert into audit.decisions (decision_id, run_id, account, symbol, timeframe, as_of,
                                     action, score, config_version, inputs)
                                 values ('d-new', 'r2', 'acct', 'X/USDT', '1h', now(), 'hold', 0, 'va', '{"n": 3}')"""))  # fmt: skip
        migrate_to(engine, "0028_route_leg_rate", down=True)
        with engine.connect() as conn:
            after = dict(conn.execute(text("select decision_id, inputs from audit.decisions")).all())
            assert after == before | {"d-new": {"n": 3, "config": A}}
            assert conn.execute(text("select to_regclass('audit.decision_configs')")).scalar() is None
