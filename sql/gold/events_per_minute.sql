-- Q1b. Connection events per minute, by device type and status.
-- Incremental: the previous counts plus the events silver added since the last gold batch.
SELECT minute, dispositivo, status, sum(events)::BIGINT AS events
FROM (
  SELECT minute, dispositivo, status, events FROM gold.events_per_minute
  UNION ALL
  SELECT date_trunc('minute', hora_conexao), dispositivo, status, count(*) FROM new_events GROUP BY ALL
)
GROUP BY ALL
