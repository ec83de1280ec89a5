-- Q1. How many devices are connected and disconnected right now?
-- Each device's latest status (silver.device_state), by device type and in total. Recomputed.
WITH kinds(dispositivo) AS (VALUES ('Computador'), ('Celular'), ('Total'))
SELECT k.dispositivo,
       count(s.ip) FILTER (WHERE s.status = 'Conectado')::BIGINT AS connected,
       count(s.ip) FILTER (WHERE s.status = 'Desconectado')::BIGINT AS disconnected,
       count(s.ip)::BIGINT AS devices
FROM kinds k
LEFT JOIN silver.device_state s ON k.dispositivo IN (s.dispositivo, 'Total')
GROUP BY k.dispositivo
