{#- Fails with one row per key value that occurs more than once. Usage, at model level:
    data_tests: [{unique_combination_of_columns: {arguments: {combination: [exchange, symbol, timeframe, ts]}}}] -#}
{% test unique_combination_of_columns(model, combination) %}
select {{ combination | join(', ') }}, count(*) as occurrences
from {{ model }}
group by {{ combination | join(', ') }}
having count(*) > 1
{% endtest %}
