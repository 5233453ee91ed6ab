-- One row per (story, symbol) it mentions.
with

source as (
    select * from {{ source('raw', 'news_symbols') }}
),

renamed as (
    select
        news_id,
        symbol
    from source
)

select * from renamed
