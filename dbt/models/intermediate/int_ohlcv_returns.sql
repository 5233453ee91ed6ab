-- Bars with their position in their series and one-bar returns. Bars are counted, not clock time, as TA-Lib counts
-- them: after a gap in timestamps the previous bar is simply the last one present.
with

bars as (
    select * from {{ ref('stg_ohlcv') }}
),

with_previous as (
    select
        *,
        row_number() over series as bar_number,
        lag(close) over series as previous_close
    from bars
    window series as (partition by exchange, symbol, timeframe order by ts)
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
        close / previous_close - 1 as ret_1,
        ln(close / previous_close) as log_ret_1
    from with_previous
)

select * from final
