"""Decision configurations stored once, by version, instead of in every decision's inputs.

Revision ID: 0029_decision_configs

Every decision recorded its decision-relevant configuration (``agents.params.decision_config``, about 1.2 KB) in its
``inputs`` under ``"config"``: the same for every decision of a run, and what pushed each row past PostgreSQL's
TOAST threshold, so the server compressed every decision's inputs (a third of a replay's bulk-write server time).
``audit.decision_configs`` keeps each configuration once under its ``config_version`` (the stable hash
``audit.decisions.config_version`` already held), with the run that first used it; decisions recorded from now on
leave ``"config"`` out of their inputs, and the decision path records their version's row first (once per version).

Backfill: one row per version whose decisions recorded a config, read from ``inputs->'config'`` of its newest such
decision (``distinct on``), with the run and time of its earliest. The old decisions' inputs keep their ``"config"``
as recorded (history is not rewritten); readers take a decision's config from its version's row, else from its inputs
(``alphaloom.records.decisions``).

No foreign key from ``audit.decisions.config_version``: decisions written outside the decision path carry a version
that names no configuration (execution's synthetic decisions: an order recovered from a venue report, ``recovered``;
a protective exit's; test fixtures' ``test``), and old rows may have recorded none. A decision's config is reachable
by its version where the decision path recorded one; a version with no row has no recorded configuration.

Downgrade: the decisions recorded without ``"config"`` get it back in their inputs from their version's row, then the
table goes.
"""

from __future__ import annotations

from alembic import op

revision = "0029_decision_configs"
down_revision = "0028_route_leg_rate"
branch_labels = None
depends_on = None

UPGRADE = """
create table audit.decision_configs (
    config_version text primary key,
    config         jsonb not null,
    run_id         text references audit.runs (run_id),
    recorded_at    timestamptz not null default now()
);
comment on table audit.decision_configs is
    'each decision configuration once (agents.params.decision_config), by the version audit.decisions reference';
comment on column audit.decision_configs.run_id is 'the run that recorded it first';

insert into audit.decision_configs (config_version, config, run_id, recorded_at)
select c.config_version, c.config, v.run_id, v.created_at
from (select distinct on (config_version) config_version, inputs -> 'config' as config from audit.decisions
      where jsonb_typeof(inputs -> 'config') = 'object' order by config_version, created_at desc, decision_id) c
join (select distinct on (config_version) config_version, run_id, created_at from audit.decisions
      where jsonb_typeof(inputs -> 'config') = 'object' order by config_version, created_at, decision_id) v
  using (config_version);
"""

DOWNGRADE = """
update audit.decisions d set inputs = d.inputs || jsonb_build_object('config', c.config)
from audit.decision_configs c
where c.config_version = d.config_version and not d.inputs ? 'config';
drop table if exists audit.decision_configs;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
