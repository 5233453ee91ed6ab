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
-- Only bars every feature can be computed from in double precision. Ingest quarantines prices outside a sane range
-- (ALPHALOOM_INGEST_*), but a bar stored before it did, or written by hand, with a close of 1e308 made the one
-- marts.features node (every series at once: dbt cannot fail one series alone) overflow, and so no symbol had features.
-- Within these bounds no sum, square or product of the models can overflow or underflow; a bar outside them is left
-- out as if it were missing (the indicators count bars, so the series continues across it).
where (
    open not between 1e-100 and 1e100
    or high not between 1e-100 and 1e100
    or low not between 1e-100 and 1e100
    or close not between 1e-100 and 1e100
    or (volume <> 0 and volume not between 1e-100 and 1e100)
) is not true
