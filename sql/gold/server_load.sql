-- Q6. Which servers need an upgrade? Load now, a flag when utilisation stayed above
-- :upgrade_pct % in every snapshot of the last :window_minutes minutes (at least :min_samples),
-- and one when it is above 100 % now (a peak the window does not flag yet).
WITH window_stats AS (
  SELECT servidor, count(*)::BIGINT AS samples_in_window,
         count(*) FILTER (WHERE utilisation_pct > :upgrade_pct)::BIGINT AS samples_above
  FROM gold.server_load_history
  WHERE as_of > :as_of - to_minutes(:window_minutes::BIGINT) AND as_of <= :as_of
  GROUP BY servidor
)
SELECT h.servidor, h.devices_connected, h.mbps_in_use, h.capacity_mbps, h.utilisation_pct,
       w.samples_in_window, w.samples_above,
       (w.samples_in_window >= :min_samples AND w.samples_above = w.samples_in_window) AS needs_upgrade,
       h.utilisation_pct > 100 AS over_capacity_now
FROM gold.server_load_history h
JOIN window_stats w USING (servidor)
WHERE h.as_of = :as_of
