-- Q7. Which clients use a disproportionate share? Connected devices whose plan speed is above
-- :heavy_factor × the median of the devices connected to the same server, with the largest
-- allowed speed at or below that limit as the throttle recommendation.
WITH connected AS (
  SELECT *, coalesce(servidor, '(none)') AS server FROM silver.device_state WHERE status = 'Conectado'
), medians AS (
  SELECT server, median(velocidade_mbps) AS server_median_mbps FROM connected GROUP BY server
)
SELECT c.ip, c.dispositivo, c.nome, c.server AS servidor, c.velocidade_mbps, m.server_median_mbps,
       round(c.velocidade_mbps / m.server_median_mbps, 2) AS times_median,
       list_max(list_filter(:speeds, s -> s <= :heavy_factor * m.server_median_mbps)) AS throttle_to_mbps
FROM connected c
JOIN medians m USING (server)
WHERE c.velocidade_mbps > :heavy_factor * m.server_median_mbps
