-- Q7. Which clients use a disproportionate share? Connected devices whose plan speed is above
-- :heavy_factor × the median of the devices connected to the same server, with the largest
-- allowed speed at or below that limit as the throttle recommendation. Each server lists its
-- :heavy_per_server heaviest (fastest plan first, ties by address: the same rows every refresh)
-- and, in heavy_on_server, how many it has: with millions of devices the full list would be
-- rewritten at every refresh and read by every dashboard.
WITH medians AS (
  SELECT coalesce(servidor, '(none)') AS server, median(velocidade_mbps) AS server_median_mbps
  FROM :device_state WHERE status = 'Conectado' GROUP BY ALL
), heaviest AS (
  SELECT m.server, m.server_median_mbps, count(*)::BIGINT AS heavy_on_server,
         max_by({'ip': d.ip, 'dispositivo': d.dispositivo, 'nome': d.nome, 'velocidade_mbps': d.velocidade_mbps},
                {'mbps': d.velocidade_mbps, 'ip': d.ip, 'dispositivo': d.dispositivo}, :heavy_per_server) AS top
  FROM :device_state d JOIN medians m ON coalesce(d.servidor, '(none)') = m.server
  WHERE d.status = 'Conectado' AND d.velocidade_mbps > :heavy_factor * m.server_median_mbps
  GROUP BY ALL
), listed AS (
  SELECT server, server_median_mbps, heavy_on_server, unnest(top) AS c FROM heaviest
)
SELECT c.ip, c.dispositivo, c.nome, server AS servidor, c.velocidade_mbps, server_median_mbps,
       round(c.velocidade_mbps / server_median_mbps, 2) AS times_median,
       list_max(list_filter(:speeds, s -> s <= :heavy_factor * server_median_mbps)) AS throttle_to_mbps,
       heavy_on_server
FROM listed
