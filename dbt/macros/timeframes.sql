{#- Every ccxt timeframe and its bar grid; alphaloom.domain.TIMEFRAMES is the same list (a Python test keeps them equal).
    Fixed-length bars open on the epoch's grid, 1w bars on Mondays 00:00 UTC (ISO weeks), 1M bars on the 1st of a
    calendar month 00:00 UTC; a 1M bar lasts 28 to 31 days and closes at the next month's start. Lengths are written
    in hours, never days or months, so that timestamptz arithmetic cannot move with a session time zone's DST; the
    month step is done on UTC wall time for the same reason. -#}
{% macro timeframe_seconds() -%}
    {{ return({
        '1m': 60, '3m': 180, '5m': 300, '15m': 900, '30m': 1800,
        '1h': 3600, '2h': 7200, '4h': 14400, '6h': 21600, '8h': 28800, '12h': 43200,
        '1d': 86400, '3d': 259200, '1w': 604800,
    }) }}
{%- endmacro %}

{% macro timeframes() -%}
    {{ return(['1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h', '12h', '1d', '3d', '1w', '1M']) }}
{%- endmacro %}

{#- When the bar of `timeframe` opening at `ts` closes (its known_at); NULL for a timeframe we do not know, which the
    not_null test on known_at then reports rather than guessing. -#}
{% macro bar_close(ts, timeframe) -%}
    case {{ timeframe }}
    {%- for name, seconds in timeframe_seconds().items() %}
        when '{{ name }}' then {{ ts }} + interval '{{ seconds }} seconds'
    {%- endfor %}
        when '1M' then ({{ ts }} at time zone 'UTC' + interval '1 month') at time zone 'UTC'
    end
{%- endmacro %}

{#- The open time of the bar of `timeframe` that holds `moment` (the grid above). -#}
{% macro bar_open(moment, timeframe) -%}
    case {{ timeframe }}
    {%- for name, seconds in timeframe_seconds().items() %}
        when '{{ name }}' then date_bin(interval '{{ seconds }} seconds', {{ moment }},
            timestamptz '{{ "1970-01-05" if name == "1w" else "1970-01-01" }} 00:00:00+00')
    {%- endfor %}
        when '1M' then date_trunc('month', {{ moment }} at time zone 'UTC') at time zone 'UTC'
    end
{%- endmacro %}
