-- One row per raw.ohlcv row: prices and volume as double precision for indicator maths, plus when the bar is known.
-- One flat select rather than the usual import/logical CTEs: PostgreSQL (15) keeps a view with CTEs as a subquery, so
-- marts.features' incremental lookups through this view lost raw.ohlcv's primary-key order (a skip scan sorted a third
-- of the table per probe); a flat view is inlined into the caller's plan and every probe is an index probe.
select
    exchange,
    symbol,
    timeframe,
    ts,
    {{ bar_close('ts', 'timeframe') }} as known_at,
    open::double precision as open,
    high::double precision as high,
    low::double precision as low,
    close::double precision as close,
    volume::double precision as volume,
    run_id,
    ingested_at
from {{ source('raw', 'ohlcv') }}
