-- Q1. How many devices are connected and disconnected right now?
-- Each device's latest status (silver.device_state), by device type and in total. Recomputed.
-- One scan: ROLLUP gives the per-type rows and the total ('Total'); the kinds keep a row at
-- zero for a type with no device (a join on "type or Total" scanned the state three times).
WITH per_kind AS (
  SELECT coalesce(dispositivo, 'Total') AS dispositivo,
         count(*) FILTER (WHERE status = 'Conectado') AS connected,
         count(*) FILTER (WHERE status = 'Desconectado') AS disconnected,
         count(*) AS devices
  FROM :device_state
  GROUP BY ROLLUP (dispositivo)
)
SELECT k.dispositivo, coalesce(p.connected, 0)::BIGINT AS connected, coalesce(p.disconnected, 0)::BIGINT AS disconnected,
       coalesce(p.devices, 0)::BIGINT AS devices
FROM (VALUES ('Computador'), ('Celular'), ('Total')) k(dispositivo)
LEFT JOIN per_kind p USING (dispositivo)
