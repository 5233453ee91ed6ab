{#- on-run-start: a marts.features stored without the carried indicator state (a table from before the incremental
    layout, or one made by hand) cannot be continued, so it is dropped and the run rebuilds it whole. Through the
    adapter, so dbt's relation cache knows it is gone and the incremental model takes its full-build path. -#}
{% macro drop_features_without_state() %}
    {%- if execute -%}
        {%- set relation = adapter.get_relation(database=target.database, schema='marts', identifier='features') -%}
        {%- if relation is not none -%}
            {%- set columns = adapter.get_columns_in_relation(relation) | map(attribute='name') | list -%}
            {%- if 'indicator_state' not in columns -%}
                {{ log("marts.features has no indicator_state column: dropping it for a full rebuild", info=true) }}
                {%- do adapter.drop_relation(relation) -%}
            {%- endif -%}
        {%- endif -%}
    {%- endif -%}
    select 1
{% endmacro %}
