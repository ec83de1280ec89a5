-- Q6 input. One load snapshot per server per refresh instant (:as_of): devices connected, Mbps
-- in use, capacity and utilisation. Incremental: only the snapshot at :as_of is (re)written, so a
-- refresh for the same instant is idempotent; snapshots older than the retention are deleted.
SELECT :as_of AS as_of, c.servidor,
       count(s.ip) FILTER (WHERE s.status = 'Conectado')::BIGINT AS devices_connected,
       coalesce(sum(s.velocidade_mbps) FILTER (WHERE s.status = 'Conectado'), 0)::BIGINT AS mbps_in_use,
       c.capacity_mbps,
       round(100.0 * coalesce(sum(s.velocidade_mbps) FILTER (WHERE s.status = 'Conectado'), 0) / c.capacity_mbps, 2) AS utilisation_pct
FROM server_capacity c
LEFT JOIN :device_state s USING (servidor)
GROUP BY c.servidor, c.capacity_mbps
