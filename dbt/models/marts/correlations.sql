{#- marts.correlations: the cross-asset correlation matrix of one-bar log returns, in long format (one row per ordered
    pair symbol_a < symbol_b), at each of the newest `correlation_bars` bar times of every (exchange, timeframe), over
    each symbol's last `correlation_window` bars up to that time.

    Incremental rule (docs: correlations_incremental_rule): a build computes the matrices of the newest bar times that
    are not stored yet, and recomputes a stored one only when marts.features rewrote a member's row at that time in the
    same dbt invocation (late data or a new series: features recomputes that series whole); the post-hook drops the
    matrices that fell out of the newest `correlation_bars`. Everything is read through the primary key of features:
    the cost follows the universe and the window, never the length of the history.
-#}
{%- set window = var('correlation_window') | int -%}
with

members as (
    {{ correlation_members(ref('features')) }}
),

{% if is_incremental() %}
stored_as_of as (
    select distinct exchange, timeframe, ts as as_of_ts
    from {{ this }}
),

as_of_times as (
    select distinct members.exchange, members.timeframe, members.as_of_ts
    from members
    left join stored_as_of using (exchange, timeframe, as_of_ts)
    where stored_as_of.as_of_ts is null
        or members.dbt_invocation_id = '{{ invocation_id }}'
),

{% else %}
as_of_times as (
    select distinct exchange, timeframe, as_of_ts
    from members
),

{% endif %}
-- Each member's last `window` returns up to the matrix time (bars counted, not clock time).
member_returns as (
    select members.exchange, members.timeframe, members.as_of_ts, members.symbol, recent.ts, recent.log_ret_1
    from members
    inner join as_of_times using (exchange, timeframe, as_of_ts)
    cross join lateral (
        select f.ts, f.log_ret_1
        from {{ ref('features') }} f
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
