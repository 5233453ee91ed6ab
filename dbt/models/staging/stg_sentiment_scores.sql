-- One row per (text hash, scorer) sentiment score.
with

source as (
    select * from {{ source('audit', 'sentiment_scores') }}
),

renamed as (
    select
        text_hash,
        scorer,
        news_id,
        label as sentiment_label,
        score as sentiment_score,
        run_id,
        created_at as scored_at
    from source
)

select * from renamed
