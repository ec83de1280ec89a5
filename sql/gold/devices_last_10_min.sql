-- Q2. How many distinct devices connected in the 10 minutes up to :as_of?
-- A moving window over silver.events: recomputed at every gold batch.
WITH kinds(dispositivo) AS (VALUES ('Computador'), ('Celular'), ('Total')),
recent AS (
  SELECT DISTINCT ip, dispositivo FROM :events
  WHERE status = 'Conectado' AND hora_conexao > :as_of - INTERVAL 10 MINUTE AND hora_conexao <= :as_of
)
SELECT :as_of AS as_of, k.dispositivo, count(r.ip)::BIGINT AS devices_connected
FROM kinds k
LEFT JOIN recent r ON k.dispositivo IN (r.dispositivo, 'Total')
GROUP BY k.dispositivo
