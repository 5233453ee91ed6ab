{#- Read indicator values out of a ta.bar_state array (macros/create_ta_functions.sql has its layout). Each is NULL on
    the bars before TA-Lib's first output (its lookback), so no warm-up value ever looks like a number. -#}

{% macro ta_ema(state, period) -%}
    {%- set slot = {10: 3, 20: 4, 50: 5}[period] -%}
    case when {{ state }}[1] >= {{ period }} then {{ state }}[{{ slot }}] end
{%- endmacro %}

{% macro ta_rsi_14(state) -%}
    case
        when {{ state }}[1] < 15 then null
        -- TA_IS_ZERO: |gain + loss| < 1e-8 counts as no movement, and TA-Lib then outputs 0.
        when {{ state }}[6] + {{ state }}[7] > -1e-8 and {{ state }}[6] + {{ state }}[7] < 1e-8 then 0
        else 100.0::double precision * ({{ state }}[6] / ({{ state }}[6] + {{ state }}[7]))
    end
{%- endmacro %}

{#- TA-Lib outputs no MACD line before its signal exists (bar 34). -#}
{% macro ta_macd(state) -%}
    case when {{ state }}[1] >= 34 then {{ state }}[8] - {{ state }}[9] end
{%- endmacro %}

{% macro ta_macd_signal(state) -%}
    case when {{ state }}[1] >= 34 then {{ state }}[10] end
{%- endmacro %}

{% macro ta_macd_hist(state) -%}
    case when {{ state }}[1] >= 34 then ({{ state }}[8] - {{ state }}[9]) - {{ state }}[10] end
{%- endmacro %}

{% macro ta_atr_14(state) -%}
    case when {{ state }}[1] >= 15 then {{ state }}[11] end
{%- endmacro %}

{% macro ta_obv(state) -%}
    {{ state }}[12]
{%- endmacro %}
