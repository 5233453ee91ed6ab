{#- Indicators equal to TA-Lib's defaults; each is NULL until TA-Lib would first output a number. The recursive ones
    (EMA, RSI, MACD) use the ta.* window aggregates from macros/create_ta_functions.sql. -#}
{%- set sma_periods = [10, 20, 50] -%}
{%- set ema_periods = [10, 20, 50] -%}
{%- set macd_fast, macd_slow, macd_signal = 12, 26, 9 -%}
-- One row per bar with every technical indicator of marts.features.
with

returns as (
    select * from {{ ref('int_ohlcv_returns') }}
),

windowed as (
    select
        *,
        {%- for n in sma_periods %}
        case when bar_number >= {{ n }} then avg(close) over last_{{ n }} end as sma_{{ n }},
        {%- endfor %}
        {%- for n in ema_periods %}
        ta.ema(close, {{ n }}, 0) over history as ema_{{ n }},
        {%- endfor %}
        ta.rsi(close, 14) over history as rsi_14,
        -- TA-Lib starts both MACD EMAs at bar slow-1: the fast one skips the first slow-fast closes.
        ta.ema(close, {{ macd_fast }}, {{ macd_slow - macd_fast }}) over history
            - ta.ema(close, {{ macd_slow }}, 0) over history as macd_line,
        case when bar_number >= 20 then var_pop(close) over last_20 end as close_var_pop_20,
        case when count(log_ret_1) over last_20 = 20 then stddev_samp(log_ret_1) over last_20 end as realized_vol_20,
        case when bar_number >= 20 then avg(volume) over last_20 end as volume_mean_20,
        case when bar_number >= 20 then stddev_samp(volume) over last_20 end as volume_stddev_20
    from returns
    window
        history as (partition by exchange, symbol, timeframe order by ts rows between unbounded preceding and current row),
        last_10 as (partition by exchange, symbol, timeframe order by ts rows between 9 preceding and current row),
        last_20 as (partition by exchange, symbol, timeframe order by ts rows between 19 preceding and current row),
        last_50 as (partition by exchange, symbol, timeframe order by ts rows between 49 preceding and current row)
),

with_macd_signal as (
    select
        *,
        ta.ema(macd_line, {{ macd_signal }}, 0) over (
            partition by exchange, symbol, timeframe order by ts rows between unbounded preceding and current row
        ) as macd_signal
    from windowed
),

with_stddev as (
    select
        *,
        -- TA-Lib's BBANDS treats a variance below 1e-8 (TA_IS_ZERO_OR_NEG) as zero.
        case when close_var_pop_20 < 1e-8 then 0 else sqrt(close_var_pop_20) end as close_stddev_pop_20
    from with_macd_signal
),

with_bands as (
    select
        *,
        sma_20 + 2 * close_stddev_pop_20 as bb_upper_20,
        sma_20 - 2 * close_stddev_pop_20 as bb_lower_20
    from with_stddev
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
        bar_number,
        ret_1,
        log_ret_1,
        {%- for n in sma_periods %}
        sma_{{ n }},
        {%- endfor %}
        {%- for n in ema_periods %}
        ema_{{ n }},
        {%- endfor %}
        rsi_14,
        -- TA-Lib reports no MACD line until its signal exists (bar slow + signal - 2).
        case when macd_signal is not null then macd_line end as macd,
        macd_signal,
        macd_line - macd_signal as macd_hist,
        sma_20 as bb_middle_20,
        bb_upper_20,
        bb_lower_20,
        -- Where the band has no width %B is undefined: NULL rather than a division by zero.
        (close - bb_lower_20) / nullif(bb_upper_20 - bb_lower_20, 0) as bb_pct_b_20,
        realized_vol_20,
        (volume - volume_mean_20) / nullif(volume_stddev_20, 0) as volume_z_20
    from with_bands
)

select * from final
