{#- marts.features: one row per bar with the technical features the agents read. The column list is a contract
    (features.yml): agents and decisions code against these names.

    Incremental rule (docs: features_incremental_rule). Per series (exchange, symbol, timeframe):
    - no stored row, or no carried state on its newest row: the whole series is computed from its first bar;
    - staged bars only after the newest stored one: only those are computed, continuing from the recursive state
      (`indicator_state`) stored on the newest row, with its last `context_bars` stored rows as history for the rolling
      windows; older rows are not rewritten;
    - a bar staged at or before the newest stored one (late data: the stored bar count no longer matches): the whole
      series is recomputed, and only that series.
-#}
{%- set benchmark = var('benchmark_symbol') -%}
{%- set beta_window = var('beta_window') | int -%}
{#- Longest rolling window over closes is SMA(50); returns windows need one more bar for their first return. -#}
{%- set context_bars = [50, beta_window + 1] | max -%}
{%- set key = 'exchange, symbol, timeframe' -%}
with

{% if is_incremental() %}
{#- Every lookup below goes through the primary keys of raw.ohlcv and of this table: the incremental build reads the new
    bars, each series' newest stored row and its context rows, and computes nothing else. The one part that still grows
    with history is the late-bar check, a count of each series' entries in raw.ohlcv's primary key (index-only). -#}
-- Every staged series: a skip scan over raw.ohlcv's primary key, one index probe per series.
staged_series as (
    with recursive skip_scan as (
        (
            select b.exchange, b.symbol, b.timeframe
            from {{ ref('stg_ohlcv') }} b
            order by b.exchange, b.symbol, b.timeframe
            limit 1
        )
        union all
        select next_series.exchange, next_series.symbol, next_series.timeframe
        from skip_scan
        cross join lateral (
            select b.exchange, b.symbol, b.timeframe
            from {{ ref('stg_ohlcv') }} b
            where (b.exchange, b.symbol, b.timeframe) > (skip_scan.exchange, skip_scan.symbol, skip_scan.timeframe)
            order by b.exchange, b.symbol, b.timeframe
            limit 1
        ) next_series
    )
    select * from skip_scan
),

series as (
    select
        staged_series.*,
        newest.ts as stored_ts,
        newest.bar_number as stored_bars,
        newest.indicator_state::double precision[] as indicator_state,
        -- staged bars up to the newest stored one (index entries only): more than stored means a late bar
        (select count(*) from {{ ref('stg_ohlcv') }} b
         where b.exchange = staged_series.exchange and b.symbol = staged_series.symbol
           and b.timeframe = staged_series.timeframe and b.ts <= newest.ts) as history_bars,
        (select count(*) from {{ ref('stg_ohlcv') }} b
         where b.exchange = staged_series.exchange and b.symbol = staged_series.symbol
           and b.timeframe = staged_series.timeframe and b.ts > newest.ts) as new_bars
    from staged_series
    left join lateral (
        select f.ts, f.bar_number, f.indicator_state
        from {{ this }} f
        where f.exchange = staged_series.exchange and f.symbol = staged_series.symbol
          and f.timeframe = staged_series.timeframe
        order by f.ts desc
        limit 1
    ) newest on true
),

continued as (
    select * from series
    where indicator_state is not null and history_bars = stored_bars and new_bars > 0
),

rebuilt as (
    select * from series
    where indicator_state is null or history_bars <> stored_bars
),

context as (
    select
        f.exchange, f.symbol, f.timeframe, f.ts, f.known_at, f.open, f.high, f.low, f.close, f.volume, f.bar_number,
        false as is_new,
        null::double precision[] as seed
    from continued
    cross join lateral (
        select *
        from {{ this }} f
        where f.exchange = continued.exchange and f.symbol = continued.symbol and f.timeframe = continued.timeframe
        order by f.ts desc
        limit {{ context_bars }}
    ) f
),

appended as (
    select
        b.exchange, b.symbol, b.timeframe, b.ts, b.known_at, b.open, b.high, b.low, b.close, b.volume,
        continued.stored_bars + row_number() over (partition by b.exchange, b.symbol, b.timeframe order by b.ts)
            as bar_number,
        true as is_new,
        continued.indicator_state as seed
    from continued
    cross join lateral (
        select *
        from {{ ref('stg_ohlcv') }} b
        where b.exchange = continued.exchange and b.symbol = continued.symbol and b.timeframe = continued.timeframe
            and b.ts > continued.stored_ts
        offset 0  -- a lookup per series by its key
    ) b
),

recomputed as (
    select
        b.exchange, b.symbol, b.timeframe, b.ts, b.known_at, b.open, b.high, b.low, b.close, b.volume,
        row_number() over (partition by b.exchange, b.symbol, b.timeframe order by b.ts) as bar_number,
        true as is_new,
        null::double precision[] as seed
    from rebuilt
    cross join lateral (
        select *
        from {{ ref('stg_ohlcv') }} b
        where b.exchange = rebuilt.exchange and b.symbol = rebuilt.symbol and b.timeframe = rebuilt.timeframe
        -- OFFSET 0 keeps this a lookup per series: the planner cannot turn it into a scan of the whole table
        offset 0
    ) b
),

bars as (
    select * from context
    union all
    select * from appended
    union all
    select * from recomputed
),

{% else %}
bars as (
    select
        exchange, symbol, timeframe, ts, known_at, open, high, low, close, volume,
        -- numbered in the shared window pass below, so the whole build sorts the bars once
        null::bigint as bar_number,
        true as is_new,
        null::double precision[] as seed
    from {{ ref('stg_ohlcv') }}
),

{% endif %}
-- The benchmark's one-bar log returns, matched to every series of its exchange and timeframe by bar time.
{% if is_incremental() %}
-- Only from the oldest bar in play of each (exchange, timeframe) on, looked up by the benchmark series' key.
bar_groups as (
    select exchange, timeframe, min(ts) as first_ts
    from bars
    group by exchange, timeframe
),

benchmark_bars as (
    select
        bar_groups.exchange,
        bar_groups.timeframe,
        b.ts,
        ln(b.close / lag(b.close) over (partition by bar_groups.exchange, bar_groups.timeframe order by b.ts))
            as benchmark_log_ret_1
    from bar_groups
    cross join lateral (
        select b.ts, b.close
        from {{ ref('stg_ohlcv') }} b
        where b.exchange = bar_groups.exchange and b.symbol = '{{ benchmark }}' and b.timeframe = bar_groups.timeframe
            and b.ts >= bar_groups.first_ts
        offset 0  -- a lookup by the benchmark's key per (exchange, timeframe), never a scan of the whole table
    ) b
),
{% else %}
benchmark_bars as (
    select
        exchange,
        timeframe,
        ts,
        ln(close / lag(close) over (partition by exchange, timeframe order by ts)) as benchmark_log_ret_1
    from {{ ref('stg_ohlcv') }}
    where symbol = '{{ benchmark }}'
),
{% endif %}

-- Joined before any window, so every window below runs over one sort of the bars.
with_benchmark as (
    select bars.*, benchmark_bars.benchmark_log_ret_1
    from bars
    left join benchmark_bars using (exchange, timeframe, ts)
),

with_previous as (
    select
        exchange, symbol, timeframe, ts, known_at, open, high, low, close, volume, is_new, seed, benchmark_log_ret_1,
        coalesce(bar_number, row_number() over series) as bar_number,
        lag(close) over series as previous_close
    from with_benchmark
    window series as (partition by {{ key }} order by ts)
),

with_returns as (
    select
        *,
        close / previous_close - 1 as ret_1,
        ln(close / previous_close) as log_ret_1
    from with_previous
),

windowed as (
    select
        *,
        -- Every recursive indicator in one pass; context rows only provide history, so the state skips them.
        ta.bar_state(close, high, low, volume, seed) filter (where is_new) over history as state,
        lead(ts) over history_all is null as is_newest,
        -- SMAs as TA-Lib computes them: a running sum (newest in, oldest out) divided by the window.
        case when bar_number >= 10 then ta.moving_sum(close) over last_10 / 10 end as sma_10,
        case when bar_number >= 20 then ta.moving_sum(close) over last_20 / 20 end as sma_20,
        case when bar_number >= 50 then ta.moving_sum(close) over last_50 / 50 end as sma_50,
        -- One accumulator per input and frame; PostgreSQL's final functions read var_pop, stddev_samp... off it.
        ta.moments(close) over last_20 as close_moments_20,
        ta.moments(log_ret_1) over last_20 as log_ret_moments_20,
        ta.moments(volume) over last_20 as volume_moments_20,
        case when bar_number >= 5 then max(high) over last_5 end as highest_5,
        case when bar_number >= 5 then min(low) over last_5 end as lowest_5,
        ta.regr_moments(log_ret_1, benchmark_log_ret_1) over last_beta as beta_moments
    from with_returns
    window
        history as (partition by {{ key }} order by ts rows between unbounded preceding and current row),
        history_all as (partition by {{ key }} order by ts),
        last_5 as (partition by {{ key }} order by ts rows between 4 preceding and current row),
        last_10 as (partition by {{ key }} order by ts rows between 9 preceding and current row),
        last_20 as (partition by {{ key }} order by ts rows between 19 preceding and current row),
        last_50 as (partition by {{ key }} order by ts rows between 49 preceding and current row),
        last_beta as (partition by {{ key }} order by ts rows between {{ beta_window - 1 }} preceding and current row)
),

with_moments as (
    select
        *,
        case when bar_number >= 20 then float8_var_pop(close_moments_20) end as close_var_pop_20,
        case when bar_number >= 20 then float8_stddev_samp(close_moments_20) end as close_stddev_samp_20,
        case when log_ret_moments_20[1] = 20 then float8_stddev_samp(log_ret_moments_20) end as realized_vol_20,
        case when bar_number >= 20 then float8_avg(volume_moments_20) end as volume_mean_20,
        case when bar_number >= 20 then float8_stddev_samp(volume_moments_20) end as volume_stddev_20,
        -- beta_moments[1] is the number of bars where both returns exist (regr_count)
        case when beta_moments[1] = {{ beta_window }} then float8_regr_slope(beta_moments) end as beta_raw,
        case when beta_moments[1] = {{ beta_window }} then float8_corr(beta_moments) end as corr_raw
    from windowed
),

with_fast_k as (
    select
        *,
        -- TA-Lib's STOCH fast %K, in its operation order; 0 where the 5-bar range is empty.
        case
            when highest_5 is null then null
            when highest_5 - lowest_5 <> 0 then (close - lowest_5) / ((highest_5 - lowest_5) / 100.0)
            else 0
        end as stoch_fast_k
    from with_moments
),

with_slow_k as (
    select
        *,
        case when bar_number >= 7 then avg(stoch_fast_k) over last_3 end as stoch_slow_k
    from with_fast_k
    window last_3 as (partition by {{ key }} order by ts rows between 2 preceding and current row)
),

with_slow_d as (
    select
        *,
        case when bar_number >= 9 then avg(stoch_slow_k) over last_3 end as stoch_d
    from with_slow_k
    window last_3 as (partition by {{ key }} order by ts rows between 2 preceding and current row)
),

with_bands as (
    select
        *,
        -- TA-Lib's BBANDS treats a variance below 1e-8 (TA_IS_ZERO_OR_NEG) as zero.
        sma_20 + 2 * case when close_var_pop_20 < 1e-8 then 0 else sqrt(close_var_pop_20) end as bb_upper_20,
        sma_20 - 2 * case when close_var_pop_20 < 1e-8 then 0 else sqrt(close_var_pop_20) end as bb_lower_20
    from with_slow_d
    where is_new
),

final as (
    select
        exchange,
        symbol,
        timeframe,
        ts,
        known_at,
        open,
        high,
        low,
        close,
        volume,
        ret_1,
        log_ret_1,
        sma_10,
        sma_20,
        sma_50,
        {{ ta_ema('state', 10) }} as ema_10,
        {{ ta_ema('state', 20) }} as ema_20,
        {{ ta_ema('state', 50) }} as ema_50,
        {{ ta_rsi_14('state') }} as rsi_14,
        {{ ta_macd('state') }} as macd,
        {{ ta_macd_signal('state') }} as macd_signal,
        {{ ta_macd_hist('state') }} as macd_hist,
        sma_20 as bb_middle_20,
        bb_upper_20,
        bb_lower_20,
        -- Where the band has no width %B is undefined: NULL rather than a division by zero.
        (close - bb_lower_20) / nullif(bb_upper_20 - bb_lower_20, 0) as bb_pct_b_20,
        realized_vol_20,
        (volume - volume_mean_20) / nullif(volume_stddev_20, 0) as volume_z_20,
        '{{ invocation_id }}'::text as dbt_invocation_id,
        bar_number,
        {{ ta_atr_14('state') }} as atr_14,
        -- TA-Lib's STOCH lookback covers %D: no %K before bar 9 either.
        case when bar_number >= 9 then stoch_slow_k end as stoch_k,
        stoch_d,
        {{ ta_obv('state') }} as obv,
        -- Closes that did not vary leave only rounding noise in the deviation (1e-15 of the price): NULL, not noise.
        case when close_stddev_samp_20 > 1e-10 * abs(sma_20) then (close - sma_20) / close_stddev_samp_20 end
            as price_z_20,
        '{{ benchmark }}'::text as benchmark_symbol,
        beta_raw as beta_to_benchmark,
        corr_raw as corr_to_benchmark,
        -- Carried only on a series' newest row: the next incremental build continues from it. As text (PostgreSQL
        -- prints float8 in its shortest exact form, so it reads back bit for bit): dbt unit tests cannot mock arrays.
        case when is_newest then state::text end as indicator_state
    from with_bands
)

select * from final
