-- Q5. Bandwidth by device type over connected devices: sum, average, median and 95th percentile (Mbps).
WITH kinds(dispositivo) AS (VALUES ('Computador'), ('Celular'), ('Total'))
SELECT k.dispositivo,
       count(s.ip)::BIGINT AS connected_devices,
       coalesce(sum(s.velocidade_mbps), 0)::BIGINT AS sum_mbps,
       round(avg(s.velocidade_mbps), 2) AS avg_mbps,
       round(quantile_cont(s.velocidade_mbps, 0.5), 2) AS p50_mbps,
       round(quantile_cont(s.velocidade_mbps, 0.95), 2) AS p95_mbps
FROM kinds k
LEFT JOIN silver.device_state s ON s.status = 'Conectado' AND k.dispositivo IN (s.dispositivo, 'Total')
GROUP BY k.dispositivo
