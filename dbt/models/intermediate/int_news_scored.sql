{#- One row per (news item, symbol it mentions) with the primary scorer's sentiment; see int_news_scored.yml for how the
    primary scorer is chosen (dbt var `sentiment_scorer`). first_seen_at is when the story was known *for that symbol*:
    the later of its first sighting and the sighting that first linked it to the symbol. -#}
{%- set scorer = var('sentiment_scorer') -%}
with

news as (
    select * from {{ ref('stg_news') }}
),

news_symbols as (
    select * from {{ ref('stg_news_symbols') }}
),

scores as (
    select * from {{ ref('stg_sentiment_scores') }}
    {%- if scorer != 'auto' %}
    where scorer = '{{ scorer }}'
    {%- else %}
    where scorer like 'finbert%' or scorer = 'lexicon-lm'
    {%- endif %}
),

ranked_scores as (
    select
        *,
        -- FinBERT first when it scored the story, else the lexicon; the newest score of a scorer wins (a story whose
        -- text changed has several text hashes).
        row_number() over (
            partition by news_id
            order by case when scorer like 'finbert%' then 0 else 1 end, scored_at desc, scorer
        ) as preference
    from scores
),

final as (
    select
        news_symbols.symbol,
        news.news_id,
        greatest(news.first_seen_at, news_symbols.first_known_at) as first_seen_at,
        ranked_scores.scorer,
        ranked_scores.sentiment_label,
        ranked_scores.sentiment_score
    from news
    inner join news_symbols on news_symbols.news_id = news.news_id
    inner join ranked_scores on ranked_scores.news_id = news.news_id and ranked_scores.preference = 1
)

select * from final
