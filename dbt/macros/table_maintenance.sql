{#- Post-hooks that keep the marts' tables cheap to build and to read. -#}

{#- post-hook: give `relation` a primary key on `columns` unless it has one. After the rows are in: one sorted index
    build instead of index maintenance row by row, and duplicates still fail the build. Unnamed, so PostgreSQL picks a
    free name while a full refresh's backup table still holds the old one. -#}
{% macro ensure_primary_key(relation, columns) -%}
do $$
begin
    if not exists (select 1 from pg_constraint where conrelid = '{{ relation }}'::regclass and contype = 'p') then
        alter table {{ relation }} add primary key ({{ columns | join(', ') }});
    end if;
end
$$
{%- endmacro %}


{#- post-hook: ANALYZE `relation` when it has no statistics yet or when more than a tenth of its rows changed since the
    last ANALYZE (autovacuum's own default threshold); an incremental build that appended a few bars leaves it to
    autovacuum rather than re-sampling a large table every run. -#}
{% macro analyze_if_stale(relation) -%}
do $$
begin
    if exists (
        select 1
        from pg_class c
        left join pg_stat_user_tables s on s.relid = c.oid
        where c.oid = '{{ relation }}'::regclass
            and (coalesce(s.last_analyze, s.last_autoanalyze) is null
                or coalesce(s.n_mod_since_analyze, 0) > 0.1 * greatest(c.reltuples, 0))
    ) then
        analyze {{ relation }};
    end if;
end
$$
{%- endmacro %}
