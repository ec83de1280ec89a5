-- Q3. Bandwidth in use now: the plan speed (Mbps) of every connected device, total and by device type.
-- One scan with ROLLUP, as in connections_now.
WITH per_kind AS (
  SELECT coalesce(dispositivo, 'Total') AS dispositivo, count(*) AS connected_devices, sum(velocidade_mbps) AS mbps_in_use
  FROM :device_state
  WHERE status = 'Conectado'
  GROUP BY ROLLUP (dispositivo)
)
SELECT k.dispositivo, coalesce(p.connected_devices, 0)::BIGINT AS connected_devices, coalesce(p.mbps_in_use, 0)::BIGINT AS mbps_in_use
FROM (VALUES ('Computador'), ('Celular'), ('Total')) k(dispositivo)
LEFT JOIN per_kind p USING (dispositivo)
