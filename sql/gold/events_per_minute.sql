-- Q1b. Connection events per minute, by device type and status.
-- Incremental: only the minutes the new silver events touch, their previous counts plus the
-- new events; the other minutes are not read or rewritten.
-- new_event_counts: the new silver events counted by minute, device type and status.
SELECT minute, dispositivo, status, (coalesce(g.events, 0) + t.events)::BIGINT AS events
FROM new_event_counts t
LEFT JOIN gold.events_per_minute g USING (minute, dispositivo, status)
