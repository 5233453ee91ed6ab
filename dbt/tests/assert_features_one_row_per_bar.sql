-- marts.features must carry every staged bar exactly once: no bar dropped, none invented.
with

bars as (
    select count(*) as n from {{ ref('stg_ohlcv') }}
),

features as (
    select count(*) as n from {{ ref('features') }}
)

select bars.n as bars, features.n as features
from bars cross join features
where bars.n <> features.n
