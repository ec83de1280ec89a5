// A lake written by netpulse on DuckDB 1.4.4 (DuckLake format 0.3) opened by today's code:
// readers are told to let a writer migrate it, the first writer's attach migrates it to 1.0, and
// its answers and the pipeline go on from where it stood. The fixture (test/fixtures/lake-ducklake-0.3)
// was recorded from commit fdfbd91 under up.sh: the catalog schema's pg_dump and the data files.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { LakeConfig } from '../lake/catalog';
import { LAKE, withLake } from '../lake/catalog';
import { postgresBinDir } from '../scripts/dev-catalog';
import { medallionPipeline } from '../workflows/pipeline';
import { closeTestResources, landingFile, sqlRows, type Row, tempDir, terminateAll, testLake, testPipeline, uniqueId, withWorker } from './helpers';

jest.setTimeout(180_000);
afterAll(closeTestResources);

const FIXTURE = path.join(__dirname, 'fixtures', 'lake-ducklake-0.3');
const expected = JSON.parse(readFileSync(path.join(FIXTURE, 'expected.json'), 'utf8')) as {
  counts: Record<string, number>; silver_events: unknown[]; connections_now: unknown[]; server_load: unknown[];
};

/**
 * The fixture restored as a lake of this test's: the dump's schema renamed (outside its COPY data)
 * and loaded by the writer role with psql, the data files unpacked, the data path pointed at them.
 */
function restoreFixture(lake: LakeConfig, dataDir: string): void {
  mkdirSync(dataDir, { recursive: true });
  execFileSync('tar', ['-xzf', path.join(FIXTURE, 'data.tar.gz'), '-C', dataDir]);
  let inCopy = false;
  const sql = gunzipSync(readFileSync(path.join(FIXTURE, 'catalog.sql.gz'))).toString('utf8').split('\n').map((line) => {
    if (inCopy) {
      if (line === '\\.') inCopy = false;
      return line;
    }
    if (line.startsWith('COPY ')) inCopy = true;
    return line.replace(/\bnetpulse\b/g, lake.catalogSchema);
  }).join('\n') + `\nUPDATE ${lake.catalogSchema}.ducklake_metadata SET value = '${dataDir}/' WHERE key = 'data_path';\n`;
  const file = path.join(path.dirname(dataDir), 'catalog.sql');
  writeFileSync(file, sql);
  const psql = spawnSync(path.join(postgresBinDir(), 'psql'), [lake.catalog, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', file], { encoding: 'utf8' });
  if (psql.status !== 0) throw new Error(`restoring the fixture failed: ${psql.stderr}`);
}

const one = async (lake: LakeConfig, sql: string) => Number(Object.values((await sqlRows(sql, lake))[0])[0]);

test('a lake of DuckLake 0.3 (netpulse on DuckDB 1.4.4): readers are told to let a writer migrate it; the writer\'s first attach migrates it to 1.0 with every row, answer and checkpoint kept, and the pipeline goes on', async () => {
  const dir = tempDir('migration');
  const lake: LakeConfig = { ...testLake(dir), dataPath: path.join(dir, 'lake') };
  restoreFixture(lake, lake.dataPath);

  // A reader cannot migrate (read-only): it says who can.
  await expect(withLake(lake, async () => undefined, { readOnly: true })).rejects.toThrow(/DuckLake format 0\.3.*a worker .*migrates it/);

  // The writer's attach migrates it.
  const version = await withLake(lake, async (db) => String((await db.runAndReadAll(
    `SELECT value FROM ducklake_options(${`'${LAKE}'`}) WHERE option_name = 'version'`)).getRows()[0][0]));
  expect(version).toBe('1.0');

  // Every table keeps its rows, silver its events and gold its answers.
  for (const [table, count] of Object.entries(expected.counts)) expect({ table, rows: await one(lake, `SELECT count(*) FROM ${table}`) }).toEqual({ table, rows: count });
  // Numbers compared as numbers, whichever way each side printed them.
  const normalise = (rows: unknown[]) => (rows as Record<string, unknown>[]).map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k,
    v === null || typeof v === 'boolean' || v === '' || !Number.isFinite(Number(v)) ? v : Number(v)])));
  expect(normalise(await sqlRows(`SELECT count(DISTINCT event_hash) AS distinct_hashes, sum(velocidade_mbps) AS mbps, min(hora_conexao)::VARCHAR AS first,
    max(hora_conexao)::VARCHAR AS last FROM silver.events`, lake))).toEqual(normalise(expected.silver_events));
  expect(normalise(await sqlRows('SELECT * FROM gold.connections_now ORDER BY 1', lake))).toEqual(normalise(expected.connections_now));
  expect(normalise(await sqlRows('SELECT * FROM gold.server_load ORDER BY 1', lake))).toEqual(normalise(expected.server_load));

  // The owners start anew from the lake's fences: new landing files are taken once, nothing older again.
  // 100 events per source after the fixture's last one (10:15:34), from new devices.
  const landing = path.join(dir, 'landing');
  for (const [k, folder] of ['Computador/Conectado', 'Celular/Conectado', 'Computador/Desconectado', 'Celular/Desconectado'].entries()) {
    const [device, status] = folder.split('/');
    await landingFile(landing, folder, `after-migration-${k}`, Array.from({ length: 100 }, (_, i): Row =>
      [`Cliente ${k}-${i}`, `172.16.${k}.${i + 1}`, `2026-12-07 10:20:${String(i % 60).padStart(2, '0')}.${k}${i}`, device, 50, status, 'srv-sp-01']));
  }
  const { workflowIdPrefix, ids } = testPipeline('mig');
  try {
    await withWorker(({ client, taskQueue }) => client.workflow.execute(medallionPipeline, {
      taskQueue, workflowId: uniqueId('pipeline-mig'), args: [{ landingPath: landing, workflowIdPrefix }],
    }), { deps: { lake, landingDir: landing } });
  } finally {
    await terminateAll(ids);
  }
  const bronzeBefore = Object.entries(expected.counts).filter(([t]) => t.startsWith('bronze.') && t !== 'bronze.quarantine').reduce((n, [, c]) => n + c, 0);
  const bronzeNow = await one(lake, `SELECT (SELECT count(*) FROM bronze.celular_conectado) + (SELECT count(*) FROM bronze.celular_desconectado)
    + (SELECT count(*) FROM bronze.computador_conectado) + (SELECT count(*) FROM bronze.computador_desconectado)`);
  expect(bronzeNow).toBe(bronzeBefore + 400);
  expect(await one(lake, 'SELECT count(*) FROM silver.events')).toBe(expected.counts['silver.events'] + 400);
  // Strings written after the migration read as written (not as the hex literal DuckLake#843 stores).
  expect(await one(lake, `SELECT count(*) FROM bronze.celular_conectado WHERE "Ip" LIKE '172.16.%'`)).toBe(100);
  expect(await one(lake, `SELECT count(*) FROM lake.file_ledger WHERE starts_with(path, '${landing}/')`)).toBe(4);
  expect(await one(lake, `SELECT count(*) FROM lake.event_log WHERE starts_with(kind, '\\x') OR starts_with(layer, '\\x')`)).toBe(0);
  expect(await one(lake, `SELECT devices FROM gold.connections_now WHERE dispositivo = 'Total'`)).toBe(await one(lake, 'SELECT count(*) FROM silver.device_state'));
});
