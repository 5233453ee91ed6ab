{#- The length of one bar of `timeframe` as an interval; NULL for a timeframe we do not know, which the not_null test
    on known_at then reports rather than guessing. -#}
{% macro timeframe_interval(timeframe) -%}
    case {{ timeframe }}
        when '1m' then interval '1 minute'
        when '5m' then interval '5 minutes'
        when '15m' then interval '15 minutes'
        when '1h' then interval '1 hour'
        when '4h' then interval '4 hours'
        when '1d' then interval '1 day'
    end
{%- endmacro %}
