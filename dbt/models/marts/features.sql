-- marts.features: one row per bar with the technical features the agents read. The column list is a contract
-- (features.yml): agents and decisions code against these names.
with

indicators as (
    select * from {{ ref('int_ohlcv_with_indicators') }}
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
        ema_10,
        ema_20,
        ema_50,
        rsi_14,
        macd,
        macd_signal,
        macd_hist,
        bb_middle_20,
        bb_upper_20,
        bb_lower_20,
        bb_pct_b_20,
        realized_vol_20,
        volume_z_20,
        -- Decisions record which build of the mart they read.
        '{{ invocation_id }}'::text as dbt_invocation_id
    from indicators
)

select * from final
