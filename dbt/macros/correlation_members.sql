{#- The members of marts.correlations' matrices: one row per (exchange, symbol, timeframe, as_of_ts) where the series
    has a bar at one of the newest `correlation_bars` bar times of its (exchange, timeframe), limited to the
    `correlation_symbols` universe when one is set; with the features row's dbt_invocation_id.

    Read from the primary key of `features` alone, never a scan of its history: a skip scan finds each series (one index
    probe per series), then each series' newest `correlation_bars` bar times (one backward probe). That is enough: a bar
    time among the newest `correlation_bars` of its (exchange, timeframe) has fewer than `correlation_bars` distinct times
    after it, so it is also among the newest `correlation_bars` of every series with a bar there. -#}
{% macro correlation_members(features) -%}
{%- set bars = var('correlation_bars') | int -%}
{%- set symbols = var('correlation_symbols') -%}
with recursive

correlation_series as (
    (
        select f.exchange, f.symbol, f.timeframe
        from {{ features }} f
        order by f.exchange, f.symbol, f.timeframe
        limit 1
    )
    union all
    select next_series.exchange, next_series.symbol, next_series.timeframe
    from correlation_series
    cross join lateral (
        select f.exchange, f.symbol, f.timeframe
        from {{ features }} f
        where (f.exchange, f.symbol, f.timeframe)
            > (correlation_series.exchange, correlation_series.symbol, correlation_series.timeframe)
        order by f.exchange, f.symbol, f.timeframe
        limit 1
    ) next_series
),

series_newest_bars as (
    select correlation_series.exchange, correlation_series.symbol, correlation_series.timeframe, newest.ts,
        newest.dbt_invocation_id
    from correlation_series
    cross join lateral (
        select f.ts, f.dbt_invocation_id
        from {{ features }} f
        where f.exchange = correlation_series.exchange and f.symbol = correlation_series.symbol
            and f.timeframe = correlation_series.timeframe
        order by f.ts desc
        limit {{ bars }}
    ) newest
    {%- if symbols %}
    where correlation_series.symbol in ({% for s in symbols %}'{{ s }}'{% if not loop.last %}, {% endif %}{% endfor %})
    {%- endif %}
),

ranked as (
    select *, dense_rank() over (partition by exchange, timeframe order by ts desc) as recency
    from series_newest_bars
)

select exchange, symbol, timeframe, ts as as_of_ts, dbt_invocation_id
from ranked
where recency <= {{ bars }}
{%- endmacro %}


{#- post-hook of marts.correlations: drop the matrices that are no longer among the newest `correlation_bars` bar times
    of their (exchange, timeframe), so an incremental build keeps what a full rebuild would produce. -#}
{% macro prune_correlations(relation) -%}
delete from {{ relation }} c
using (
    select exchange, timeframe, min(as_of_ts) as oldest_as_of_ts
    from ({{ correlation_members(ref('features')) }}) members
    group by exchange, timeframe
) kept
where c.exchange = kept.exchange and c.timeframe = kept.timeframe and c.ts < kept.oldest_as_of_ts
{%- endmacro %}
