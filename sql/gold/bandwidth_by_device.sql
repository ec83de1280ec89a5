-- Q5. Bandwidth by device type over connected devices: sum, average, median and 95th percentile (Mbps).
-- One scan with ROLLUP, as in connections_now.
WITH per_kind AS (
  SELECT coalesce(dispositivo, 'Total') AS dispositivo,
         count(*) AS connected_devices,
         sum(velocidade_mbps) AS sum_mbps,
         round(avg(velocidade_mbps), 2) AS avg_mbps,
         round(quantile_cont(velocidade_mbps, 0.5), 2) AS p50_mbps,
         round(quantile_cont(velocidade_mbps, 0.95), 2) AS p95_mbps
  FROM :device_state
  WHERE status = 'Conectado'
  GROUP BY ROLLUP (dispositivo)
)
SELECT k.dispositivo, coalesce(p.connected_devices, 0)::BIGINT AS connected_devices, coalesce(p.sum_mbps, 0)::BIGINT AS sum_mbps,
       p.avg_mbps, p.p50_mbps, p.p95_mbps
FROM (VALUES ('Computador'), ('Celular'), ('Total')) k(dispositivo)
LEFT JOIN per_kind p USING (dispositivo)
