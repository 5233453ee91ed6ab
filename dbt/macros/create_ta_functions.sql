{#-
    TA-Lib-compatible recursive indicators as window aggregates in schema `ta`, created (or replaced) by on-run-start.

    ta.ema(value, period, skip)  EMA as TA-Lib computes it: ignores the first `skip` non-null values, seeds with the
                                 simple mean of the next `period`, then prev + (value - prev) * 2 / (period + 1).
                                 NULL until seeded. `skip` lets MACD start its fast EMA where TA-Lib does.
    ta.rsi(value, period)        Wilder's RSI with TA-Lib's seeding: mean gain/loss of the first `period` differences,
                                 then (prev * (period - 1) + current) / period; 0 when gain + loss is (TA-Lib's) zero.
                                 NULL until `period` differences were seen.

    Use them as window functions, `over (partition by ... order by ts rows between unbounded preceding and current row)`.
    The state functions are STRICT, so NULL inputs are skipped. Operations are written in TA-Lib's order so the results
    are bit-for-bit those of TA-Lib's C code (float8 is IEEE double on both sides).
-#}
{% macro create_ta_functions() %}
-- Two dbt runs starting together would race on "create or replace"; serialise them.
select pg_advisory_xact_lock(hashtext('alphaloom.create_ta_functions'));

create schema if not exists ta;

-- state: {values seen after the skipped ones, running sum then EMA, values skipped, seeded 0/1}
create or replace function ta.ema_step(
    state double precision[], value double precision, period integer, skip integer
) returns double precision[]
language plpgsql immutable strict parallel safe as $fn$
declare
    seen double precision := state[1];
    acc double precision := state[2];
    skipped double precision := state[3];
begin
    if skipped < skip then
        return array[seen, acc, skipped + 1, 0];
    end if;
    if seen < period then
        acc := acc + value;
        seen := seen + 1;
        if seen < period then
            return array[seen, acc, skipped, 0];
        end if;
        return array[seen, acc / period, skipped, 1];
    end if;
    return array[seen, ((value - acc) * (2.0::double precision / (period + 1))) + acc, skipped, 1];
end
$fn$;

create or replace function ta.ema_final(state double precision[]) returns double precision
language sql immutable strict parallel safe as $fn$
    select case when state[4] = 1 then state[2] end
$fn$;

create or replace aggregate ta.ema(double precision, integer, integer) (
    sfunc = ta.ema_step,
    stype = double precision[],
    finalfunc = ta.ema_final,
    initcond = '{0,0,0,0}',
    parallel = safe
);

-- state: {values seen, previous value, average gain, average loss, seeded 0/1}
create or replace function ta.rsi_step(
    state double precision[], value double precision, period integer
) returns double precision[]
language plpgsql immutable strict parallel safe as $fn$
declare
    seen double precision := state[1];
    diff double precision;
    gain double precision := state[3];
    loss double precision := state[4];
begin
    if seen = 0 then
        return array[1, value, 0, 0, 0];
    end if;
    diff := value - state[2];
    -- PostgreSQL raises on float underflow where C flushes to zero; a long flat stretch decays gain/loss towards it.
    -- Flushing below 1e-300 cannot change an output: TA-Lib already reports 0 when gain + loss < 1e-8.
    if gain < 1e-300 then gain := 0; end if;
    if loss < 1e-300 then loss := 0; end if;
    if seen <= period then
        if diff < 0 then loss := loss - diff; else gain := gain + diff; end if;
        if seen < period then
            return array[seen + 1, value, gain, loss, 0];
        end if;
        return array[seen + 1, value, gain / period, loss / period, 1];
    end if;
    loss := loss * (period - 1);
    gain := gain * (period - 1);
    if diff < 0 then loss := loss - diff; else gain := gain + diff; end if;
    return array[seen + 1, value, gain / period, loss / period, 1];
end
$fn$;

create or replace function ta.rsi_final(state double precision[]) returns double precision
language sql immutable strict parallel safe as $fn$
    select case
        when state[5] <> 1 then null
        -- TA_IS_ZERO: |x| < 1e-8 counts as zero, and TA-Lib then outputs 0, not NULL.
        when state[3] + state[4] > -1e-8 and state[3] + state[4] < 1e-8 then 0
        else 100.0::double precision * (state[3] / (state[3] + state[4]))
    end
$fn$;

create or replace aggregate ta.rsi(double precision, integer) (
    sfunc = ta.rsi_step,
    stype = double precision[],
    finalfunc = ta.rsi_final,
    initcond = '{0,0,0,0,0}',
    parallel = safe
);
{% endmacro %}
