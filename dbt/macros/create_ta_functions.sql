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

-- ta.bar_state: every recursive indicator of marts.features in ONE window pass (one sort, one state per series), and
-- seedable, so an incremental build continues a series from the state stored on its newest row instead of replaying
-- its history. State layout (double precision[], 1-based), as TA-Lib's C code carries it:
--   1 bars seen n              2 previous close
--   3 EMA(10)  4 EMA(20)  5 EMA(50)            running sums until n = period, then the EMA (SMA-seeded)
--   6 RSI(14) average gain  7 average loss     sums of the first 14 differences, then Wilder's smoothing
--   8 MACD fast EMA(12)  9 slow EMA(26)        the fast one skips the first 14 closes, as TA-Lib's MACD does
--  10 MACD signal EMA(9) of the MACD line      seeded with the mean of the first 9 lines (bars 26..34)
--  11 ATR(14)                                  sum of the first 14 true ranges (bars 2..15), then Wilder's smoothing
--  12 OBV                                      the first volume, then +/- volume by the sign of the close change
-- `seed` is the state to continue from (NULL: start a new series); only the first call of a window reads it.
-- Read the outputs with the ta_* macros in macros/ta_bar_state.sql, which know when each value exists.
create or replace function ta.bar_state_step(
    state double precision[],
    close double precision,
    high double precision,
    low double precision,
    volume double precision,
    seed double precision[]
) returns double precision[]
language plpgsql immutable parallel safe as $fn$
declare
    s double precision[];
    n double precision;
    prev double precision;
    diff double precision;
    tr double precision;
    gain double precision;
    loss double precision;
    line double precision;
begin
    if close is null then
        return state;
    end if;
    s := coalesce(state, seed, array[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]::double precision[]);
    n := s[1] + 1;
    prev := s[2];
    s[1] := n;
    s[2] := close;
    -- EMA(10), EMA(20), EMA(50): k = 2 / (period + 1), written in TA-Lib's operation order.
    if n < 10 then s[3] := s[3] + close; elsif n = 10 then s[3] := (s[3] + close) / 10;
    else s[3] := ((close - s[3]) * (2.0::double precision / 11)) + s[3]; end if;
    if n < 20 then s[4] := s[4] + close; elsif n = 20 then s[4] := (s[4] + close) / 20;
    else s[4] := ((close - s[4]) * (2.0::double precision / 21)) + s[4]; end if;
    if n < 50 then s[5] := s[5] + close; elsif n = 50 then s[5] := (s[5] + close) / 50;
    else s[5] := ((close - s[5]) * (2.0::double precision / 51)) + s[5]; end if;
    -- MACD(12, 26, 9): both EMAs first output at bar 26.
    if n > 14 then
        if n < 26 then s[8] := s[8] + close; elsif n = 26 then s[8] := (s[8] + close) / 12;
        else s[8] := ((close - s[8]) * (2.0::double precision / 13)) + s[8]; end if;
    end if;
    if n < 26 then s[9] := s[9] + close; elsif n = 26 then s[9] := (s[9] + close) / 26;
    else s[9] := ((close - s[9]) * (2.0::double precision / 27)) + s[9]; end if;
    if n >= 26 then
        line := s[8] - s[9];
        if n < 34 then s[10] := s[10] + line; elsif n = 34 then s[10] := (s[10] + line) / 9;
        else s[10] := ((line - s[10]) * (2.0::double precision / 10)) + s[10]; end if;
    end if;
    if n = 1 then
        s[12] := volume;
        return s;
    end if;
    -- OBV
    if close > prev then s[12] := s[12] + volume; elsif close < prev then s[12] := s[12] - volume; end if;
    -- RSI(14). PostgreSQL raises on float underflow where C flushes to zero; a long flat stretch decays gain/loss
    -- towards it. Flushing below 1e-300 cannot change an output: TA-Lib reports 0 when gain + loss < 1e-8.
    diff := close - prev;
    gain := s[6];
    loss := s[7];
    if gain < 1e-300 then gain := 0; end if;
    if loss < 1e-300 then loss := 0; end if;
    if n <= 15 then
        if diff < 0 then loss := loss - diff; else gain := gain + diff; end if;
        if n = 15 then gain := gain / 14; loss := loss / 14; end if;
    else
        loss := loss * 13;
        gain := gain * 13;
        if diff < 0 then loss := loss - diff; else gain := gain + diff; end if;
        gain := gain / 14;
        loss := loss / 14;
    end if;
    s[6] := gain;
    s[7] := loss;
    -- ATR(14): true range as TA-Lib's TRANGE, then SMA seed and Wilder's smoothing.
    tr := high - low;
    if abs(prev - high) > tr then tr := abs(prev - high); end if;
    if abs(prev - low) > tr then tr := abs(prev - low); end if;
    if n < 15 then s[11] := s[11] + tr; elsif n = 15 then s[11] := (s[11] + tr) / 14;
    else
        if s[11] < 1e-300 then s[11] := 0; end if;
        s[11] := ((s[11] * 13) + tr) / 14;
    end if;
    return s;
end
$fn$;

create or replace aggregate ta.bar_state(
    double precision, double precision, double precision, double precision, double precision[]
) (
    sfunc = ta.bar_state_step,
    stype = double precision[],
    parallel = safe
);
-- Window aggregates that make the rolling windows of marts.features cheap. PostgreSQL's float8 aggregates have no
-- inverse transition, so over a `rows between n preceding` frame each one re-reads all n rows for every row.
--
-- ta.moving_sum(x): a running sum that adds the bar entering the frame and subtracts the one leaving it (an inverse
-- transition), so one addition and one subtraction per row whatever the window. The frame head moves before the tail,
-- so the operations come in TA-Lib's SMA order (sum of the first n, then - oldest + newest): sum / n is TA-Lib's SMA.
create or replace aggregate ta.moving_sum(double precision) (
    sfunc = float8pl,
    stype = double precision,
    msfunc = float8pl,
    minvfunc = float8mi,
    mstype = double precision,
    parallel = safe
);

-- ta.moments(x): PostgreSQL's own float8 accumulator state {N, Sx, Sxx} (what avg, var_pop, stddev_samp build), so one
-- pass over a frame serves all of them: float8_avg(m), float8_var_pop(m), float8_stddev_samp(m) give exactly what
-- avg, var_pop and stddev_samp over the same frame give; m[1] is count(x).
create or replace aggregate ta.moments(double precision) (
    sfunc = float8_accum,
    stype = double precision[],
    initcond = '{0,0,0}',
    parallel = safe
);

-- ta.regr_moments(y, x): the regression state {N, Sx, Sxx, Sy, Syy, Sxy} of regr_count/regr_slope/corr(y, x):
-- float8_regr_slope(m) and float8_corr(m) equal regr_slope(y, x) and corr(y, x); m[1] is regr_count(y, x).
create or replace aggregate ta.regr_moments(double precision, double precision) (
    sfunc = float8_regr_accum,
    stype = double precision[],
    initcond = '{0,0,0,0,0,0}',
    parallel = safe
);
{% endmacro %}
