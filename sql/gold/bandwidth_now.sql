-- Q3. Bandwidth in use now: the plan speed (Mbps) of every connected device, total and by device type.
WITH kinds(dispositivo) AS (VALUES ('Computador'), ('Celular'), ('Total'))
SELECT k.dispositivo, count(s.ip)::BIGINT AS connected_devices, coalesce(sum(s.velocidade_mbps), 0)::BIGINT AS mbps_in_use
FROM kinds k
LEFT JOIN silver.device_state s ON s.status = 'Conectado' AND k.dispositivo IN (s.dispositivo, 'Total')
GROUP BY k.dispositivo
