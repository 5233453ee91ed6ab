-- One row per (story, symbol) it mentions, with when that link was first known (point in time).
with

source as (
    select * from {{ source('raw', 'news_symbols') }}
),

renamed as (
    select
        news_id,
        symbol,
        first_known_at
    from source
)

select * from renamed
