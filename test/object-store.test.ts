// The lake and the landing zone on object storage (a real S3 server: SeaweedFS, scripts/s3.sh):
// two worker processes that share no disk, one SIGKILLed inside a batch's write; the generator,
// maintenance, retention and requeue on S3.
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { LakeConfig } from '../lake/catalog';
import { LAKE } from '../lake/catalog';
import { withConnection } from '../lake/duckdb';
import { listObjects, useObjectStore } from '../lake/object-store';
import { writeSyntheticLanding } from '../bench/landing-maker';
import { startDevS3, type DevS3 } from '../scripts/dev-s3';
import { medallionPipeline } from '../workflows/pipeline';
import { generatorWorkflow } from '../workflows/generator';
import { maintenanceWorkflow } from '../workflows/maintenance';
import type { MaintenanceReport } from '../rules/maintenance';
import {
  cli, closeTestResources, firstFailpoint, lakeEnv, sqlRows, startWorkerProcess, stopProcess, tempDir, terminateAll, testClient, testLake, testPipeline, uniqueId, withWorker,
} from './helpers';

jest.setTimeout(240_000);

let s3: DevS3;
beforeAll(async () => {
  s3 = await startDevS3(tempDir('s3'));
  Object.assign(process.env, s3.env); // this process reads the lake too
});
// The S3 server stops before the file's temp folders (its own among them) are deleted.
afterAll(() => {
  for (const name of Object.keys(s3?.env ?? {})) delete process.env[name];
  s3?.stop();
});
afterAll(closeTestResources);

const one = async (lake: LakeConfig, sql: string) => Number(Object.values((await sqlRows(sql, lake))[0])[0]);

/** A lake and a landing zone under a prefix of their own in the test bucket. */
function s3Lake(tag: string): { prefix: string; landing: string; lake: LakeConfig } {
  const prefix = `s3://${s3.bucket}/${uniqueId(tag)}`;
  return { prefix, landing: `${prefix}/landing`, lake: { ...testLake(tempDir(`${tag}-unused`)), dataPath: `${prefix}/lake` } };
}

/** Three rows that break silver's rules (an address that is not an IPv4, a plan that is not sold), as a landing object or file. */
async function writeBadRows(file: string): Promise<void> {
  await withConnection(':memory:', async (db) => {
    if (file.startsWith('s3://')) await useObjectStore(db, 'write');
    await db.run(`COPY (SELECT * FROM (VALUES
        ('Ana', 'Rua 1', '999.1.1.1', TIMESTAMP '2026-01-01 00:00:01', 'Celular', 50::BIGINT, 'Conectado'),
        ('Bia', 'Rua 2', '10.0.0.1', TIMESTAMP '2026-01-01 00:00:02', 'Celular', 7::BIGINT, 'Conectado'),
        ('Caio', 'Rua 3', 'not an ip', TIMESTAMP '2026-01-01 00:00:03', 'Celular', 10::BIGINT, 'Conectado'))
      AS t(Nome, Endereco, Ip, Hora_Conexao, Dispositivo_de_Acesso, Velocidade_de_Conexao, Status_Conexao)) TO '${file}' (FORMAT parquet)`);
  });
}

/** The same landing in `root`: 12 files of 2,000 rows, 2 of them sent again under other names, and a file of 3 bad rows. */
async function writeLanding(root: string): Promise<number> {
  await writeSyntheticLanding({ root, files: 12, rowsPerFile: 2000 });
  await writeSyntheticLanding({ root, files: 2, rowsPerFile: 2000, prefix: 'resent' }); // the same rows as files 0 and 1
  if (!root.startsWith('s3://')) mkdirSync(path.join(root, 'Celular', 'Conectado'), { recursive: true });
  await writeBadRows(`${root}/Celular/Conectado/bad.parquet`);
  return 14 * 2000 + 3;
}

/** Every gold table's rows, without the refresh time (as_of), for comparing two runs. */
async function goldAnswers(lake: LakeConfig): Promise<Record<string, unknown[]>> {
  const tables = (await sqlRows<{ t: string }>(`SELECT table_name AS t FROM information_schema.tables
    WHERE table_catalog = current_database() AND table_schema = 'gold' ORDER BY 1`, lake)).map((r) => r.t);
  const answers: Record<string, unknown[]> = {};
  for (const t of tables) {
    const columns = (await sqlRows<{ column_name: string }>(`DESCRIBE gold.${t}`, lake)).map((c) => c.column_name).filter((c) => c !== 'as_of');
    answers[t] = await sqlRows(`SELECT ${columns.map((c) => `"${c}"`).join(', ')} FROM gold.${t} ORDER BY ALL`, lake);
  }
  return answers;
}

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

test('two worker processes that share no disk (landing and lake on S3), one SIGKILLed inside a batch write: every landing row once in bronze, bronze = silver + quarantined + duplicates, gold equal to a clean run', async () => {
  const { prefix, landing, lake } = s3Lake('nodisk');
  const { sources, workflowIdPrefix, ids } = testPipeline('s3');
  const landingRows = await writeLanding(landing);
  const taskQueue = uniqueId('tq-s3');
  // Each worker has a working directory, data folder, temp folder, failpoint folder and catalog
  // password file of its own: nothing on disk in common, only the network (Temporal, PostgreSQL, S3).
  const hosts = [0, 1].map((k) => {
    const home = tempDir(`host${k}`);
    const failpoints = path.join(home, 'failpoints');
    mkdirSync(failpoints);
    const passfile = /passfile=(\S+)/.exec(lake.catalog)?.[1];
    const ownPassfile = path.join(home, 'pgpass');
    if (passfile) copyFileSync(passfile, ownPassfile);
    const own = (catalog: string | undefined) => catalog && passfile ? catalog.replace(passfile, ownPassfile) : catalog;
    const env = {
      ...lakeEnv({ ...lake, catalog: own(lake.catalog)!, readerCatalog: own(lake.readerCatalog) }), ...s3.env,
      TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS!, NETPULSE_TASK_QUEUE: taskQueue, NETPULSE_DATA_DIR: home, TMPDIR: home,
      NETPULSE_LANDING_DIR: landing, NETPULSE_LANDING_ROOTS: prefix, NETPULSE_FAILPOINT_DIR: failpoints, NETPULSE_FAILPOINT_WAIT_MS: '1500',
    };
    return { home, failpoints, worker: startWorkerProcess(env, home) };
  });
  const client = await testClient();
  try {
    const run = await client.workflow.start(medallionPipeline, {
      taskQueue, workflowId: uniqueId('pipeline-s3'),
      args: [{
        sources, landingPath: landing, workflowIdPrefix, options: { maxFilesPerBatch: 2, heartbeatTimeoutSeconds: 2 },
        silver: { heartbeatTimeoutSeconds: 2 }, gold: { heartbeatTimeoutSeconds: 2 },
      }],
    });
    // Kill whichever worker is first inside a batch's transaction, right before its COMMIT.
    const inside = await firstFailpoint(hosts.map((h) => h.failpoints), 90_000);
    const victim = hosts.find((h) => h.worker.pid === inside.pid)!;
    expect(victim).toBeDefined();
    await stopProcess(victim.worker, 'SIGKILL');
    const pass = (await run.result())!;
    expect(pass.bronze.reduce((n, b) => n + b.files, 0)).toBe(15);

    // Every landing object once in bronze, its rows once.
    const bronzeRows = (await Promise.all(sources.map((s) => one(lake, `SELECT count(*) FROM bronze.${s.name}`)))).reduce((a, b) => a + b, 0);
    expect(bronzeRows).toBe(landingRows);
    expect(await one(lake, `SELECT count(*) FROM lake.file_ledger WHERE outcome = 'ingested'`)).toBe(15);
    expect(await one(lake, `SELECT count(*) - count(DISTINCT path) FROM lake.file_ledger`)).toBe(0);
    expect(await one(lake, `SELECT count(*) FROM lake.file_ledger WHERE NOT starts_with(path, '${landing}/')`)).toBe(0);
    // The killed batch committed once, by the survivor.
    expect(await one(lake, `SELECT count(*) FROM ${LAKE}.snapshots() WHERE json_extract_string(commit_extra_info, '$.batchId') = '${inside.batchId}'`)).toBe(1);
    // bronze = silver + quarantined + duplicates
    const dq = Object.fromEntries((await sqlRows<{ check_name: string; n: string }>(
      `SELECT check_name, sum(rows) AS n FROM silver.dq_counts GROUP BY 1`, lake)).map((r) => [r.check_name, Number(r.n)]));
    expect(dq.rows_in).toBe(bronzeRows);
    expect(dq.events_out + dq.duplicates + dq.quarantined).toBe(bronzeRows);
    expect(dq.duplicates).toBeGreaterThanOrEqual(4000);
    expect(dq.quarantined).toBe(3);
    expect(await one(lake, 'SELECT count(*) FROM silver.events')).toBe(dq.events_out);
    expect(await one(lake, 'SELECT count(*) FROM silver.quarantine')).toBe(3);

    // The lake's files are objects; neither worker's folder holds a Parquet file.
    const lakeObjects = await listObjects(lake.dataPath);
    expect(lakeObjects.filter((o) => o.path.endsWith('.parquet')).length).toBeGreaterThan(0);
    for (const h of hosts) expect(filesUnder(h.home).filter((f) => f.endsWith('.parquet'))).toEqual([]);

    // The same landing through one in-process worker, on local disk: the same answers.
    const cleanDir = tempDir('clean');
    const clean = testLake(cleanDir);
    const cleanLanding = path.join(cleanDir, 'landing');
    await writeLanding(cleanLanding);
    const cleanPipeline = testPipeline('clean');
    try {
      await withWorker(({ client: c, taskQueue: q }) => c.workflow.execute(medallionPipeline, {
        taskQueue: q, workflowId: uniqueId('pipeline-clean'),
        args: [{ sources: cleanPipeline.sources, landingPath: cleanLanding, workflowIdPrefix: cleanPipeline.workflowIdPrefix }],
      }), { deps: { lake: clean, landingDir: cleanLanding } });
      expect(await goldAnswers(lake)).toEqual(await goldAnswers(clean));
    } finally {
      await terminateAll(cleanPipeline.ids);
    }
  } finally {
    await terminateAll(ids);
    for (const h of hosts) await stopProcess(h.worker, 'SIGTERM');
  }
});

test('on S3: the generator writes whole objects, a quarantined object is requeued, and maintenance merges, expires, deletes orphans and archives landing objects', async () => {
  const { prefix, landing, lake } = s3Lake('maint');
  const { sources, workflowIdPrefix, ids } = testPipeline('s3m');
  const env = { ...lakeEnv(lake), ...s3.env, NETPULSE_LANDING_DIR: landing, NETPULSE_LANDING_ROOTS: prefix };
  const saved = { NETPULSE_LANDING_ROOTS: process.env.NETPULSE_LANDING_ROOTS };
  process.env.NETPULSE_LANDING_ROOTS = `${process.env.NETPULSE_LANDING_ROOTS}:${prefix}`; // the generator activity checks its target
  try {
    await withWorker(async ({ client, taskQueue }) => {
      const generated = await client.workflow.execute(generatorWorkflow, {
        taskQueue, workflowId: uniqueId('gen-s3'), args: [{ ticks: 2, seed: 5, startTime: '2026-01-01T00:00:00Z', landingPath: landing }],
      });
      expect(generated.rowsWritten).toBe(500);
      const landed = await listObjects(landing);
      expect(landed).toHaveLength(8);
      expect(landed.every((o) => /\/(Computador|Celular)\/(Conectado|Desconectado)\/[^/.][^/]*\.parquet$/.test(o.path) && o.size > 0)).toBe(true);
      // An object that is not Parquet: quarantined with the reason.
      const junk = `${landing}/Celular/Conectado/junk.parquet`;
      await withConnection(':memory:', async (db) => {
        await useObjectStore(db, 'write');
        await db.run(`COPY (SELECT 'not parquet' AS line) TO '${junk}' (FORMAT csv, HEADER false)`);
      });
      const pass = () => client.workflow.execute(medallionPipeline, {
        taskQueue, workflowId: uniqueId('pipeline-s3m'), args: [{ sources, landingPath: landing, workflowIdPrefix }],
      });
      // Batches above the inlining limit, so bronze tables get Parquet files for maintenance to merge.
      await writeSyntheticLanding({ root: landing, files: 4, rowsPerFile: 1500, prefix: 'big' });
      await pass();
      expect(await one(lake, `SELECT count(*) FROM silver.events`)).toBe(500 + 6000);
      expect(await one(lake, `SELECT count(*) FROM bronze.quarantine WHERE path = '${junk}'`)).toBe(1);

      // The producer fixes the object; requeue puts it back in line and the next pass takes it.
      await writeBadRows(junk);
      await writeSyntheticLanding({ root: landing, files: 4, rowsPerFile: 1500, prefix: 'big2', seed: 2 });
      const requeued = await cli(['requeue', '--path', 'junk.parquet'], env);
      expect(requeued.stderr).toBe('');
      expect(requeued.code).toBe(0);
      await pass();
      expect(await one(lake, `SELECT count(*) FROM lake.file_ledger WHERE path = '${junk}' AND outcome = 'ingested'`)).toBe(1);
      expect(await one(lake, `SELECT count(*) FROM silver.quarantine`)).toBe(3);

      // An orphan: an object under the lake's data path that no snapshot references.
      const orphan = `${lake.dataPath}/orphan-${Date.now()}.parquet`;
      await writeBadRows(orphan);
      const report: MaintenanceReport = await client.workflow.execute(maintenanceWorkflow, {
        taskQueue, workflowId: uniqueId('maintenance-s3'),
        args: [{ expireOlderThan: new Date().toISOString(), landing: 'archive', landingRetentionHours: 0, orphanGraceHours: 0 }],
      });
      expect(report.snapshotsExpired).toBeGreaterThan(0);
      expect(report.orphansDeleted).toBe(1);
      // Inlined rows flushed to Parquet and small files merged, on S3.
      expect(report.tables.some((t) => t.flushed.files > 0)).toBe(true);
      expect(report.tables.some((t) => t.merged.files > t.merged.intoFiles)).toBe(true);
      expect(report.landingFiles.archived).toBe(17);
      // What is left under the data path is what the catalog knows: the orphan and the expired files are gone.
      const meta = `__ducklake_metadata_${LAKE}.${lake.catalogSchema}`;
      const known = new Set((await sqlRows<{ path: string }>(`SELECT path FROM ${meta}.ducklake_data_file UNION ALL SELECT path FROM ${meta}.ducklake_delete_file`, lake))
        .map((r) => r.path.split('/').pop()));
      const after = await listObjects(lake.dataPath);
      expect(after.map((o) => o.path)).not.toContain(orphan);
      expect(after.filter((o) => !known.has(o.path.split('/').pop()))).toEqual([]);
      expect(await listObjects(landing)).toEqual([]);
      expect(await listObjects(`s3://${s3.bucket}/${prefix.split('/').pop()}/archive`)).toHaveLength(17);
      // The lake still answers after maintenance.
      expect(await one(lake, `SELECT count(*) FROM silver.events`)).toBe(500 + 12000);
    }, { deps: { lake, landingDir: landing, landingRoots: [prefix] } });
  } finally {
    process.env.NETPULSE_LANDING_ROOTS = saved.NETPULSE_LANDING_ROOTS;
    await terminateAll(ids);
  }
});
