-- One row per raw.news row, renamed to what the marts say: a news item, first seen at a (possibly assumed) time.
with

source as (
    select * from {{ source('raw', 'news') }}
),

renamed as (
    select
        id as news_id,
        url,
        title,
        summary,
        published_at,
        first_seen_at,
        first_seen_assumed,
        run_id,
        ingested_at
    from source
)

select * from renamed
