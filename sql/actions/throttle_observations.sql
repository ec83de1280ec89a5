-- What the throttle controller tells the throttle workflows, from gold's latest refresh:
--  * new proposals, the heaviest first, while a server has fewer than :propose_per_server waiting
--    for a decision (clients with an open throttle, or one that ended in the last :quiet_minutes,
--    are not proposed again);
--  * for each open throttle, whether gold still lists its client as heavy;
--  * under an automatic policy (:auto), which proposals it approves now: heavy since their
--    proposal for :min_heavy_minutes on a server at or above :min_utilisation_pct, the heaviest
--    first, while the server has fewer than :max_per_server clients approved or throttled.
WITH now_throttles AS (:throttles_now),
open AS (
  SELECT * FROM now_throttles WHERE state NOT IN ('lifted', 'withdrawn', 'rejected')
),
ended_lately AS (  -- clients whose throttle ended lately are not proposed again yet
  SELECT client FROM now_throttles WHERE state IN ('lifted', 'withdrawn', 'rejected') AND happened_at > now() - to_seconds(:quiet_minutes * 60)
),
proposed_at AS (  -- when each open episode was proposed: its client has been heavy since then
  SELECT a.client, min(a.happened_at) AS since FROM actions.throttle_audit a JOIN open o USING (client, episode) GROUP BY ALL
),
as_of AS (SELECT max(as_of) AS as_of FROM gold.server_load_history),
heavy AS (
  SELECT h.ip, h.dispositivo, h.ip || '/' || h.dispositivo AS client, h.servidor, h.velocidade_mbps, h.server_median_mbps,
         h.times_median, h.throttle_to_mbps, h.heavy_on_server, s.utilisation_pct
  FROM gold.heavy_clients h JOIN gold.server_load s USING (servidor)
  WHERE h.throttle_to_mbps IS NOT NULL
),
waiting AS (  -- proposals per server waiting for a decision
  SELECT servidor, count(*) AS n FROM open WHERE state = 'proposed' GROUP BY ALL
),
proposals AS (
  SELECT c.* EXCLUDE (rank_new) FROM (
    SELECT *, row_number() OVER (PARTITION BY servidor ORDER BY velocidade_mbps DESC, ip, dispositivo) AS rank_new
    FROM heavy WHERE client NOT IN (SELECT client FROM open) AND client NOT IN (SELECT client FROM ended_lately)
  ) c LEFT JOIN waiting w USING (servidor)
  WHERE c.rank_new + coalesce(w.n, 0) <= :propose_per_server
),
observed AS (
  SELECT coalesce(o.client, h.client) AS client, coalesce(o.ip, h.ip) AS ip, coalesce(o.dispositivo, h.dispositivo) AS dispositivo,
         h.client IS NOT NULL AS heavy, coalesce(o.limit_mbps, h.throttle_to_mbps) AS limit_mbps, o.state,
         coalesce(h.servidor, o.servidor) AS servidor, h.velocidade_mbps, h.server_median_mbps, h.times_median,
         h.utilisation_pct, h.heavy_on_server, p.since
  FROM open o
  FULL JOIN (SELECT * FROM heavy WHERE client IN (SELECT client FROM open) UNION ALL SELECT * FROM proposals) h USING (client)
  LEFT JOIN proposed_at p USING (client)
),
enforced AS (  -- clients per server approved or throttled already
  SELECT servidor, count(*) AS n FROM open WHERE state <> 'proposed' GROUP BY ALL
),
eligible AS (
  SELECT client, servidor,
         row_number() OVER (PARTITION BY servidor ORDER BY velocidade_mbps DESC, client) + coalesce(e.n, 0) AS slot
  FROM observed LEFT JOIN enforced e USING (servidor)
  WHERE :auto AND state = 'proposed' AND heavy
    AND since <= now() - to_seconds(:min_heavy_minutes * 60)
    AND utilisation_pct >= :min_utilisation_pct
)
SELECT o.client, o.ip, o.dispositivo, o.heavy, o.limit_mbps::BIGINT AS limit_mbps, o.servidor,
       strftime((SELECT as_of FROM as_of), '%Y-%m-%dT%H:%M:%SZ') AS as_of,
       o.velocidade_mbps::BIGINT AS plan_mbps, o.server_median_mbps::DOUBLE AS server_median_mbps, o.times_median::DOUBLE AS times_median,
       round(o.utilisation_pct, 1)::DOUBLE AS server_utilisation_pct, o.heavy_on_server::BIGINT AS heavy_on_server,
       CASE WHEN e.slot <= :max_per_server THEN
         format('policy: heavy since {} ({} min or more) on a server at {:.1f} % ({} % or more), client {} of at most {} on {}',
                strftime(o.since, '%Y-%m-%d %H:%M:%S'), :min_heavy_minutes, o.utilisation_pct, :min_utilisation_pct, e.slot, :max_per_server, o.servidor)
       END AS auto_approve
FROM observed o LEFT JOIN eligible e USING (client)
ORDER BY o.servidor, o.client
