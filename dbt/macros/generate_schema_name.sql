{#- Models land in exactly the schema their folder names (staging, intermediate, marts), with no target prefix:
    other code reads `marts.features` by that name, whatever the target. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
