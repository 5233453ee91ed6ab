-- One row per raw.ohlcv row: prices and volume as double precision for indicator maths, plus when the bar is known.
with

source as (
    select * from {{ source('raw', 'ohlcv') }}
),

renamed as (
    select
        exchange,
        symbol,
        timeframe,
        ts,
        ts + {{ timeframe_interval('timeframe') }} as known_at,
        open::double precision as open,
        high::double precision as high,
        low::double precision as low,
        close::double precision as close,
        volume::double precision as volume,
        run_id,
        ingested_at
    from source
)

select * from renamed
