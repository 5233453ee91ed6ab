-- marts.news_sentiment: per bar of a symbol, the news first seen during that bar and their primary-scorer sentiment.
-- A story belongs to the bar whose [ts, known_at) holds its first_seen_at for the symbol (never published_at; a symbol
-- linked by a later sighting counts from that sighting, see int_news_scored): what a decision at the bar's close could
-- have read. Bars open on the epoch grid (ingest rejects any other ts), hence date_bin.
with

news as (
    select * from {{ ref('int_news_scored') }}
),

bars as (
    select * from {{ ref('stg_ohlcv') }}
),

timeframes as (
    select * from (values
        ('1m', interval '1 minute'), ('5m', interval '5 minutes'), ('15m', interval '15 minutes'),
        ('1h', interval '1 hour'), ('4h', interval '4 hours'), ('1d', interval '1 day')
    ) as t (timeframe, bar_length)
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
        and bars.ts = date_bin(timeframes.bar_length, news.first_seen_at, timestamptz '1970-01-01 00:00:00+00')
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
