-- Q4. Share of connected devices on high-speed plans (>= :high_speed_mbps Mbps).
SELECT :high_speed_mbps::INTEGER AS threshold_mbps,
       count(*)::BIGINT AS connected_devices,
       count(*) FILTER (WHERE velocidade_mbps >= :high_speed_mbps)::BIGINT AS high_speed_devices,
       round(100.0 * count(*) FILTER (WHERE velocidade_mbps >= :high_speed_mbps) / nullif(count(*), 0), 2) AS share_pct
FROM :device_state
WHERE status = 'Conectado'
