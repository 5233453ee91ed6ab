-- marts.news_sentiment: per bar of a symbol, the news first seen during that bar and their primary-scorer sentiment.
-- A story belongs to the bar whose [ts, known_at) holds its first_seen_at for the symbol (never published_at; a symbol
-- linked by a later sighting counts from that sighting, see int_news_scored): what a decision at the bar's close could
-- have read. Bars open on their timeframe's grid (ingest rejects any other ts): macros/timeframes.sql.
with

news as (
    select * from {{ ref('int_news_scored') }}
),

bars as (
    select * from {{ ref('stg_ohlcv') }}
),

timeframes as (
    select * from (values
        {%- for timeframe in timeframes() %}
        ('{{ timeframe }}'){{ "," if not loop.last }}
        {%- endfor %}
    ) as t (timeframe)
),

news_in_bars as (
    select
        bars.exchange,
        bars.symbol,
        bars.timeframe,
        bars.ts,
        bars.known_at,
        news.news_id,
        news.scorer,
        news.sentiment_score
    from news
    cross join timeframes
    inner join bars
        on bars.symbol = news.symbol
        and bars.timeframe = timeframes.timeframe
        and bars.ts = {{ bar_open('news.first_seen_at', 'timeframes.timeframe') }}
),

final as (
    select
        exchange,
        symbol,
        timeframe,
        ts,
        known_at,
        string_agg(distinct scorer, ',' order by scorer) as scorer,
        count(*) as news_count,
        count(*) filter (where sentiment_score > 0) as positive_count,
        count(*) filter (where sentiment_score < 0) as negative_count,
        avg(sentiment_score) as mean_sentiment,
        min(sentiment_score) as min_sentiment
    from news_in_bars
    group by exchange, symbol, timeframe, ts, known_at
)

select * from final
