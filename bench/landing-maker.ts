// Fast, seeded landing data for tests and benchmarks: K parquet files of R rows with the
// generator's schema and value domains, written by DuckDB itself (faker per row is too slow
// for millions of rows).
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { withConnection, sqlString } from '../lake/duckdb';
import { isObjectUrl, joinUrl, useObjectStore } from '../lake/object-store';
import { DEFAULT_SCENARIOS, type Scenario } from '../rules/generator';
import { SPEEDS_MBPS } from '../rules/events';

export interface SyntheticLanding {
  root: string;
  files: number;
  rowsPerFile: number;
  seed?: number;
  /** Files go round-robin over these folders. */
  scenarios?: Pick<Scenario, 'device' | 'status'>[];
  /** File name prefix, so several calls can write into the same folders. */
  prefix?: string;
  /** Adds the population mode's Servidor column, over this many servers (srv-00 …). */
  servers?: number;
  /**
   * Event times spread at random over this many hours in every file (out of order across files),
   * instead of rising with the file number: the case where time-ordered data skipping does not help.
   */
  shuffleHours?: number;
  /**
   * Events come from this many devices (a client population), instead of a new random address
   * for nearly every row: device state then stays the population's size.
   */
  devices?: number;
  /**
   * Every event this many times in its file (rowsPerFile in all), each copy with another plan speed
   * and server: a source that resends an event with changed attributes. Which copy silver keeps
   * is decided by its order, which must not depend on the run.
   */
  copies?: number;
}

export async function writeSyntheticLanding(spec: SyntheticLanding): Promise<string[]> {
  const scenarios = spec.scenarios ?? DEFAULT_SCENARIOS;
  const seed = spec.seed ?? 1;
  const copies = Math.max(1, Math.trunc(spec.copies ?? 1));
  const written: string[] = [];
  const objectStore = isObjectUrl(spec.root);
  await withConnection(':memory:', async (db) => {
    if (objectStore) await useObjectStore(db, 'write');
    for (let i = 0; i < spec.files; i++) {
      const { device, status } = scenarios[i % scenarios.length];
      const dir = objectStore ? joinUrl(spec.root, device, status) : path.join(spec.root, device, status);
      if (!objectStore) await mkdir(dir, { recursive: true });
      const who = spec.devices ? 'd' : 'h'; // what a device's name, address and IP derive from
      const file = (objectStore ? joinUrl : path.join)(dir, `${spec.prefix ?? 'synthetic'}_${device}_${status}_${String(i).padStart(7, '0')}.parquet`);
      await db.run(`
        COPY (
          SELECT
            'Cliente ' || (${who} % 50000) AS Nome,
            'Rua ' || (${who} % 997) || ', ' || (${who} % 3000) || ' - São Paulo - SP' AS Endereco,
            '10.' || ((${who} >> 8) % 256) || '.' || ((${who} >> 16) % 256) || '.' || ((${who} >> 24) % 254 + 1) AS Ip,
            TIMESTAMP '2026-01-01 00:00:00' + to_milliseconds(${spec.shuffleHours
              ? `((h >> 12) % ${Math.trunc(spec.shuffleHours * 3_600_000)})::BIGINT`
              : `${i} * 10000 + (h % 10000)::BIGINT`}) AS Hora_Conexao,
            ${sqlString(device)} AS Dispositivo_de_Acesso,
            ${`[${SPEEDS_MBPS.join(', ')}]`}[(1 + ((h >> 32) + copy) % ${SPEEDS_MBPS.length})::BIGINT]::BIGINT AS Velocidade_de_Conexao,
            ${sqlString(status)} AS Status_Conexao
            ${spec.servers ? `, 'srv-' || lpad((((h >> 40) + copy) % ${Math.trunc(spec.servers)})::VARCHAR, 2, '0') AS Servidor` : ''}
          FROM (SELECT range AS n, hash(${seed}, ${i}, range) AS h${spec.devices ? `, hash(h % ${Math.trunc(spec.devices)}) AS d` : ''}
                FROM range(${Math.ceil(spec.rowsPerFile / copies)}))${copies > 1
            ? `, range(${copies}) AS copies(copy) ORDER BY copy, n LIMIT ${spec.rowsPerFile}` // the copies far apart in the file
            : ', (SELECT 0 AS copy)'}
        ) TO ${sqlString(file)} (FORMAT parquet)`);
      written.push(file);
    }
  });
  return written;
}
