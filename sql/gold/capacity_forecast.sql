-- Q8. When will each server be full? A least-squares line through its utilisation in the load
-- history of the last :forecast_hours hours up to :as_of: the trend in percentage points a day,
-- the fit's quality (R², 0 to 1; a flat line fits perfectly), and the days until 100 % at that trend. A server with fewer
-- than :forecast_min_samples snapshots, or a history shorter than :forecast_min_span_minutes
-- minutes, says "not enough history"; one whose trend is flat or falling, "not growing".
WITH history AS (
  SELECT servidor, as_of, utilisation_pct, epoch(as_of) AS t
  FROM gold.server_load_history
  WHERE as_of > :as_of - to_hours(:forecast_hours::BIGINT) AND as_of <= :as_of
), fit AS (
  SELECT servidor, count(*)::BIGINT AS samples,
         round(epoch(max(as_of)) - epoch(min(as_of))) / 60 AS span_minutes,
         arg_max(utilisation_pct, as_of) AS utilisation_pct,
         CASE WHEN var_pop(t) > 0 THEN regr_slope(utilisation_pct, t) * 86400 END AS trend_pct_per_day,
         CASE WHEN var_pop(t) > 0 THEN regr_r2(utilisation_pct, t) END AS r2
  FROM history GROUP BY servidor
)
SELECT servidor, samples, span_minutes::DOUBLE AS span_minutes, utilisation_pct,
       round(trend_pct_per_day, 3) AS trend_pct_per_day, round(coalesce(r2, 0), 3) AS fit_r2,
       CASE WHEN samples < :forecast_min_samples OR span_minutes < :forecast_min_span_minutes THEN 'not enough history'
            WHEN utilisation_pct >= 100 THEN 'full'
            WHEN trend_pct_per_day IS NULL OR trend_pct_per_day <= 0 THEN 'not growing'
            ELSE 'forecast' END AS forecast,
       CASE WHEN samples < :forecast_min_samples OR span_minutes < :forecast_min_span_minutes THEN NULL
            WHEN utilisation_pct >= 100 THEN 0
            WHEN trend_pct_per_day > 0 THEN round((100 - utilisation_pct) / trend_pct_per_day, 2) END AS days_until_full
FROM fit
