-- Q1b. Connection events per minute, by device type and status.
-- Incremental: only the minutes the new silver events touch, their previous counts plus the
-- new events; the other minutes are not read or rewritten.
WITH touched AS (
  SELECT date_trunc('minute', hora_conexao) AS minute, dispositivo, status, count(*) AS events FROM new_events GROUP BY ALL
)
SELECT minute, dispositivo, status, (coalesce(g.events, 0) + t.events)::BIGINT AS events
FROM touched t
LEFT JOIN gold.events_per_minute g USING (minute, dispositivo, status)
