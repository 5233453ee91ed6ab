{#- marts.correlations: the cross-asset correlation matrix of one-bar log returns, in long format (one row per ordered
    pair symbol_a < symbol_b), at each of the newest `correlation_bars` bar times of every (exchange, timeframe), over
    each symbol's last `correlation_window` bars up to that time. -#}
{%- set window = var('correlation_window') | int -%}
{%- set symbols = var('correlation_symbols') -%}
with

features as (
    select * from {{ ref('features') }}
),

bar_times as (
    select exchange, timeframe, ts
    from features
    {%- if symbols %}
    where symbol in ({% for s in symbols %}'{{ s }}'{% if not loop.last %}, {% endif %}{% endfor %})
    {%- endif %}
    group by exchange, timeframe, ts
),

newest_bar_times as (
    select exchange, timeframe, ts as as_of_ts
    from (
        select *, row_number() over (partition by exchange, timeframe order by ts desc) as recency
        from bar_times
    ) ranked
    where recency <= {{ var('correlation_bars') | int }}
),

-- Symbols with a bar at the matrix time, and their last `window` returns up to it (bars counted, not clock time).
members as (
    select newest_bar_times.*, f.symbol
    from newest_bar_times
    inner join features f
        on f.exchange = newest_bar_times.exchange and f.timeframe = newest_bar_times.timeframe
        and f.ts = newest_bar_times.as_of_ts
    {%- if symbols %}
    where f.symbol in ({% for s in symbols %}'{{ s }}'{% if not loop.last %}, {% endif %}{% endfor %})
    {%- endif %}
),

member_returns as (
    select members.exchange, members.timeframe, members.as_of_ts, members.symbol, recent.ts, recent.log_ret_1
    from members
    cross join lateral (
        select f.ts, f.log_ret_1
        from features f
        where f.exchange = members.exchange and f.symbol = members.symbol and f.timeframe = members.timeframe
            and f.ts <= members.as_of_ts
        order by f.ts desc
        limit {{ window }}
    ) recent
),

pairs as (
    select
        a.exchange,
        a.timeframe,
        a.as_of_ts,
        a.symbol as symbol_a,
        b.symbol as symbol_b,
        regr_count(a.log_ret_1, b.log_ret_1) as observations,
        corr(a.log_ret_1, b.log_ret_1) as correlation
    from member_returns a
    inner join member_returns b
        on b.exchange = a.exchange and b.timeframe = a.timeframe and b.as_of_ts = a.as_of_ts and b.ts = a.ts
        and a.symbol < b.symbol
    group by a.exchange, a.timeframe, a.as_of_ts, a.symbol, b.symbol
),

final as (
    select
        exchange,
        timeframe,
        as_of_ts as ts,
        symbol_a,
        symbol_b,
        {{ window }} as window_bars,
        observations,
        -- Fewer common bars than the window (gaps, a young symbol): no number rather than a thinner one.
        case when observations = {{ window }} then correlation end as correlation
    from pairs
)

select * from final
