// The lake on DuckLake with a real PostgreSQL catalog: several worker processes at once, a
// worker killed inside its write transaction, two attempts of one batch racing, readers in
// other processes while the pipeline writes, and maintenance.
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
import path from 'node:path';
import { writeSyntheticLanding } from '../bench/landing-maker';
import { LAKE, withLake, type LakeConfig } from '../lake/catalog';
import { dropLake } from '../lake/admin';
import { tableAtSql } from '../lake/changes';
import type { Source } from '../rules/bronze';
import { DEFAULT_SCENARIOS } from '../rules/generator';
import type { MaintenanceReport } from '../rules/maintenance';
import { maintenanceWorkflow } from '../workflows/maintenance';
import { medallionPipeline } from '../workflows/pipeline';
import {
  cli, closeTestResources, firstFailpoint, lakeEnv, sqlRows, startWorkerProcess, stopProcess, tempDir, terminateAll, testClient, testLake, testPipeline, uniqueId, waitFor, withWorker,
} from './helpers';

afterAll(closeTestResources);

const one = async (lake: LakeConfig, sql: string) => Number(Object.values((await sqlRows(sql, lake))[0])[0]);

/** Every row of bronze exactly once, and silver's accounting closes over it. */
async function expectExactlyOnce(lake: LakeConfig, sources: Source[], rowsPerFile: number, files: number) {
  for (const source of sources) {
    expect(await one(lake, `SELECT count(*) FROM (SELECT rastreamento_source FROM bronze.${source.name} GROUP BY 1 HAVING count(*) <> ${rowsPerFile})`)).toBe(0);
  }
  const bronzeRows = (await Promise.all(sources.map((s) => one(lake, `SELECT count(*) FROM bronze.${s.name}`)))).reduce((a, b) => a + b, 0);
  expect(bronzeRows).toBe(files * rowsPerFile);
  expect(await one(lake, `SELECT count(*) FROM lake.file_ledger WHERE outcome = 'ingested'`)).toBe(files);
  const dq = Object.fromEntries((await sqlRows<{ check_name: string; n: string }>(
    `SELECT check_name, sum(rows) AS n FROM silver.dq_counts GROUP BY 1`, lake)).map((r) => [r.check_name, Number(r.n)]));
  expect(dq.rows_in).toBe(bronzeRows);
  expect(dq.events_out + dq.duplicates + dq.quarantined).toBe(bronzeRows);
  expect(await one(lake, 'SELECT count(*) FROM silver.events')).toBe(dq.events_out);
  expect(await one(lake, 'SELECT count(*) - count(DISTINCT (ip, dispositivo, hora_conexao, status)) FROM silver.events')).toBe(0);
  expect(await one(lake, `SELECT devices FROM gold.connections_now WHERE dispositivo = 'Total'`))
    .toBe(await one(lake, 'SELECT count(*) FROM silver.device_state'));
}

test('two worker processes on one catalog: one SIGKILLed inside its write transaction, the other finishes the pass; every row exactly once', async () => {
  const dir = tempDir('twoworkers');
  const landing = path.join(dir, 'landing');
  const failpoints = path.join(dir, 'failpoints');
  mkdirSync(failpoints);
  const lake = testLake(dir);
  const { sources, workflowIdPrefix, ids } = testPipeline('kill');
  await writeSyntheticLanding({ root: landing, files: 16, rowsPerFile: 3000 });
  const taskQueue = uniqueId('tq-two');
  const env = {
    TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS!, NETPULSE_TASK_QUEUE: taskQueue, NETPULSE_LANDING_DIR: landing, ...lakeEnv(lake),
    NETPULSE_FAILPOINT_DIR: failpoints, NETPULSE_FAILPOINT_WAIT_MS: '1500',
  };
  const workers = [startWorkerProcess(env), startWorkerProcess(env)];
  const client = await testClient();
  try {
    const run = await client.workflow.start(medallionPipeline, {
      taskQueue, workflowId: uniqueId('pipeline-two'),
      args: [{
        sources, landingPath: landing, workflowIdPrefix, options: { maxFilesPerBatch: 2, heartbeatTimeoutSeconds: 2 },
        silver: { heartbeatTimeoutSeconds: 2 }, gold: { heartbeatTimeoutSeconds: 2 },
      }],
    });
    // Kill whichever worker is first inside a batch's transaction, right before its COMMIT.
    const inside = await firstFailpoint([failpoints], 60_000);
    const victim = workers.find((w) => w.pid === inside.pid)!;
    expect(victim).toBeDefined();
    await stopProcess(victim, 'SIGKILL');
    const pass = (await run.result())!;
    expect(pass.bronze.reduce((n, b) => n + b.files, 0)).toBe(16);
    await expectExactlyOnce(lake, sources, 3000, 16);
    // The killed batch committed once, by the survivor; the survivor ran every later batch.
    expect(await one(lake, `SELECT count(*) FROM ${LAKE}.snapshots() WHERE json_extract_string(commit_extra_info, '$.batchId') = '${inside.batchId}'`)).toBe(1);
    expect(await one(lake, `SELECT count(*) FROM ${LAKE}.snapshots() WHERE commit_extra_info IS NOT NULL`)).toBe(16 / 2 + 2); // 8 bronze, 1 silver, 1 gold
  } finally {
    await terminateAll(ids);
    for (const w of workers) await stopProcess(w, 'SIGTERM');
  }
});

test('two attempts of one batch in two processes at once: the fence lets one commit; the other returns its result', async () => {
  const dir = tempDir('fence');
  const landing = path.join(dir, 'landing');
  const failpoints = path.join(dir, 'failpoints');
  mkdirSync(failpoints);
  const lake = testLake(dir);
  const files = await writeSyntheticLanding({ root: landing, files: 3, rowsPerFile: 2000, scenarios: [DEFAULT_SCENARIOS[0]] });
  const request = {
    source: { name: `fence_${Math.random().toString(36).slice(2, 6)}`, label: 'Computador Conectado', path: 'Computador/Conectado' },
    batchId: 'fence:0', batchSeq: 0, files: files.map((f) => ({ path: f, size: 0, mtimeMs: 0 })),
  };
  // Each process runs the real activity (real DuckDB, real catalog); the failpoint holds both
  // inside their transactions so that they overlap.
  const script = `
    const { MockActivityEnvironment } = require('@temporalio/testing');
    const { bronzeActivities } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'activities', 'bronze.js'))});
    const { lakeFromEnv } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'lake', 'catalog.js'))});
    const activities = bronzeActivities({ lake: lakeFromEnv(), landingDir: ${JSON.stringify(landing)} });
    new MockActivityEnvironment().run(activities.ingestBronzeBatch, ${JSON.stringify(request)})
      .then((r) => { console.log(JSON.stringify(r)); process.exit(0); }, (e) => { console.error(e); process.exit(1); });`;
  const attempt = () => new Promise<Record<string, unknown>>((resolve, reject) => {
    execFile(process.execPath, ['-e', script], {
      cwd: path.join(__dirname, '..'), env: { ...process.env, ...lakeEnv(lake), NETPULSE_FAILPOINT_DIR: failpoints, NETPULSE_FAILPOINT_WAIT_MS: '2000' },
    }, (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(JSON.parse(stdout.trim().split('\n').pop()!))));
  });
  const results = await Promise.all([attempt(), attempt()]);
  expect(readdirSync(failpoints)).toHaveLength(2); // both were inside their transactions at once
  expect(results.map((r) => r.alreadyCommitted).sort()).toEqual([false, true]);
  expect(results[0]).toMatchObject({ rows: 6000, version: results[1].version, batchId: 'fence:0' });
  expect(await one(lake, `SELECT count(*) FROM bronze.${request.source.name}`)).toBe(6000);
  expect(await one(lake, `SELECT count(*) FROM lake.file_ledger`)).toBe(3);
  expect(await one(lake, `SELECT count(*) FROM lake.event_log WHERE batch_id = 'fence:0'`)).toBe(1);
});

/** The README's reader snippet, run as written by bash with the DuckDB CLI; its result tables, parsed from DuckDB's box output. */
function readmeReaderSnippet(lake: LakeConfig): Promise<{ code: number; stderr: string; tables: Record<string, string>[][] }> {
  const readme = readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
  const block = /<!-- reader-snippet[^>]*-->\s*```bash\n([\s\S]*?)```\s*<!-- \/reader-snippet -->/.exec(readme)?.[1];
  if (!block) throw new Error('README.md has no reader-snippet block');
  // The test catalog is scripts/catalog.sh's cluster in a data folder of its own, as up.sh's is in data/.
  const passfile = / passfile=(\S+)/.exec(lake.catalog)![1];
  const env = { ...process.env, NETPULSE_DATA_DIR: path.dirname(path.dirname(passfile)), NETPULSE_CATALOG_PORT: /port=(\d+)/.exec(lake.catalog)![1], NETPULSE_CATALOG_SCHEMA: lake.catalogSchema };
  return new Promise((resolve) => {
    execFile('bash', ['-c', block], { cwd: path.join(__dirname, '..'), env }, (error, stdout, stderr) => {
      const tables: Record<string, string>[][] = [];
      let header: string[] | undefined;
      for (const line of stdout.split('\n')) {
        if (line.startsWith('┌')) { header = undefined; tables.push([]); continue; }
        if (!line.startsWith('│')) continue;
        const cells = line.split('│').slice(1, -1).map((c) => c.trim());
        if (!header) header = cells;
        else if (!/^(varchar|int64|int32|double|bigint)$/.test(cells[0])) tables[tables.length - 1].push(Object.fromEntries(header.map((h, i) => [h, cells[i]])));
      }
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stderr, tables });
    });
  });
}

test('readers in other processes (the CLI, and the README\'s snippet in the DuckDB CLI) read gold and silver while the continuous pipeline writes', async () => {
  const dir = tempDir('readers');
  const landing = path.join(dir, 'landing');
  const lake = testLake(dir);
  const { sources, workflowIdPrefix, ids } = testPipeline('read');
  await writeSyntheticLanding({ root: landing, files: 4, rowsPerFile: 200, prefix: 'start' });
  const taskQueue = uniqueId('tq-read');
  const env = { TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS!, NETPULSE_TASK_QUEUE: taskQueue, ...lakeEnv(lake) };
  const input = { sources, landingPath: landing, workflowIdPrefix, gold: { options: { refreshIntervalSeconds: 0 } } };
  try {
    await withWorker(async ({ client }) => {
      await client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId('pipeline-first'), args: [input] });
      const continuous = await client.workflow.start(medallionPipeline, {
        taskQueue, workflowId: uniqueId('pipeline-continuous'), args: [{ ...input, continuous: true, intervalSeconds: 0.2 }],
      });
      const seen: { events: number; devices: number; total: number; parts: number }[] = [];
      for (let i = 0; i < 6; i++) {
        await writeSyntheticLanding({ root: landing, files: 4, rowsPerFile: 200, prefix: `more${i}`, seed: 10 + i });
        const [query, report, snippet] = await Promise.all([
          cli(['query', 'SELECT count(*) AS events FROM silver.events', '--format', 'json'], env),
          cli(['report', '--json'], env),
          readmeReaderSnippet(lake),
        ]);
        expect({ query: query.code, report: report.code, snippet: snippet.code, stderr: query.stderr + report.stderr + snippet.stderr })
          .toEqual({ query: 0, report: 0, snippet: 0, stderr: '' });
        const snippetTotal = snippet.tables[0].find((r) => r.dispositivo === 'Total')!;
        expect(Number(snippetTotal.devices)).toBe(snippet.tables[0].filter((r) => r.dispositivo !== 'Total').reduce((n, r) => n + Number(r.devices), 0));
        const connections = JSON.parse(report.stdout).tables.connections_now as { dispositivo: string; devices: string }[];
        const total = Number(connections.find((r) => r.dispositivo === 'Total')!.devices);
        const parts = connections.filter((r) => r.dispositivo !== 'Total').reduce((n, r) => n + Number(r.devices), 0);
        seen.push({ events: Number(JSON.parse(query.stdout)[0].events), devices: total, total, parts });
      }
      await continuous.cancel();
      await client.workflow.getHandle(continuous.workflowId).result().catch(() => undefined);
      // The owners may still finish a pass the pipeline had asked for: wait until no snapshot comes for 2 s.
      const latestSnapshot = async () => (await cli(['query', `SELECT max(snapshot_id) AS v FROM ducklake_snapshots('${LAKE}')`, '--format', 'csv'], env)).stdout;
      let last = await latestSnapshot();
      await waitFor('the lake to be quiet', async () => {
        await new Promise((r) => setTimeout(r, 2000));
        const now = await latestSnapshot();
        const quiet = now === last;
        last = now;
        return quiet;
      }, 60_000);
      // Once the lake is quiet, the snippet and the CLI read the same answers.
      const [query, report, snippet] = await Promise.all([
        cli(['query', 'SELECT count(*) AS events FROM silver.events', '--format', 'json'], env), cli(['report', '--json'], env), readmeReaderSnippet(lake)]);
      const cliConnections = (JSON.parse(report.stdout).tables.connections_now as Record<string, unknown>[])
        .map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, String(v)])));
      expect(snippet.tables[0]).toEqual([...cliConnections].sort((a, b) => a.dispositivo.localeCompare(b.dispositivo, 'en')));
      expect(snippet.tables[1]).toEqual([{ events: String(JSON.parse(query.stdout)[0].events) }]);
      expect(Number(snippet.tables[1][0].events)).toBeGreaterThan(0);
      // Each report is one consistent snapshot; what readers saw only grows.
      for (const s of seen) expect(s.total).toBe(s.parts);
      for (let i = 1; i < seen.length; i++) expect(seen[i].events).toBeGreaterThanOrEqual(seen[i - 1].events);
      expect(seen[seen.length - 1].events).toBeGreaterThan(seen[0].events);
    }, { taskQueue, deps: { lake, landingDir: landing } });
  } finally {
    await terminateAll(ids);
  }
});

const parquetFiles = (dir: string): number =>
  readdirSync(dir, { recursive: true }).filter((f) => String(f).endsWith('.parquet')).length;

/** A lake with one bronze source (Celular/Conectado), a file a bronze batch, gold refreshed every pass. */
function oneSourceLake(tag: string) {
  const dir = tempDir(tag);
  const landing = path.join(dir, 'landing');
  const { sources, workflowIdPrefix, ids } = testPipeline(tag.slice(0, 3));
  const [source] = sources.filter((s) => s.path === 'Celular/Conectado');
  const input = { sources: [source], landingPath: landing, workflowIdPrefix, options: { maxFilesPerBatch: 1 }, gold: { options: { refreshIntervalSeconds: 0 } } };
  return { dir, landing, lake: testLake(dir), source, ids, input, scenario: [DEFAULT_SCENARIOS[1]], taskQueue: uniqueId(`tq-${tag}`) };
}

test('maintenance merges small files and expires old snapshots, never one a downstream checkpoint still reads; time travel inside the retention answers', async () => {
  // 1,500 rows a batch: above the inlining limit, so each bronze batch writes a Parquet file.
  const { dir, landing, lake, source, ids, input, scenario, taskQueue } = oneSourceLake('maintenance');
  try {
    await withWorker(async ({ client }) => {
      const pass = () => client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId('pipeline-mnt'), args: [input] });
      // The first pass creates every table; DuckLake merges files written under one schema version.
      await writeSyntheticLanding({ root: landing, files: 1, rowsPerFile: 1500, scenarios: scenario, prefix: 'a' });
      const first = (await pass())!;
      const retentionStart = new Date().toISOString(); // what the second pass commits is inside the retention
      await writeSyntheticLanding({ root: landing, files: 12, rowsPerFile: 1500, scenarios: scenario, prefix: 'b', seed: 2 });
      const second = (await pass())!;
      const goldNow = await sqlRows(`SELECT * FROM gold.connections_now ORDER BY ALL`, lake);
      const meta = `__ducklake_metadata_${LAKE}.${lake.catalogSchema}`;
      const bronzeFiles = () => one(lake, `SELECT count(*) FROM ${meta}.ducklake_data_file d JOIN ${meta}.ducklake_table t USING (table_id)
        WHERE t.table_name = '${source.name}' AND t.end_snapshot IS NULL AND d.end_snapshot IS NULL`);
      expect(await bronzeFiles()).toBe(13); // a Parquet file per bronze batch
      const maintain = (extra: object = {}): Promise<MaintenanceReport> => client.workflow.execute(maintenanceWorkflow, {
        taskQueue, workflowId: uniqueId('maintenance'), args: [{ expireOlderThan: new Date().toISOString(), ...extra }],
      });

      // Everything read downstream: small files merged, old snapshots expired, their files deleted.
      const report = await maintain({ landing: 'archive', landingRetentionHours: 0, archivePath: path.join(dir, 'archive') });
      expect(await bronzeFiles()).toBeLessThanOrEqual(2);
      expect(report.after.allFiles).toBeLessThan(report.before.allFiles);
      expect(report.snapshotsExpired).toBeGreaterThan(0);
      // The expired files are gone from disk: every file left is one the catalog still knows.
      // (Their number may grow: the flush writes a file for each table whose rows were inlined.)
      expect(parquetFiles(lake.dataPath)).toBe(await one(lake, `SELECT (SELECT count(*) FROM ${meta}.ducklake_data_file) + (SELECT count(*) FROM ${meta}.ducklake_delete_file)`));
      expect(report.landingFiles.archived).toBe(13);
      expect(parquetFiles(landing)).toBe(0);
      expect(parquetFiles(path.join(dir, 'archive'))).toBe(13);
      // The ledger is partitioned by bronze table: planning reads only its own source's files.
      expect(await one(lake, `SELECT count(*) FROM ${meta}.ducklake_partition_info p JOIN ${meta}.ducklake_table t USING (table_id)
        WHERE t.table_name = 'file_ledger' AND t.end_snapshot IS NULL AND p.end_snapshot IS NULL`)).toBe(1);

      // Time travel: the second gold refresh is inside what was kept and still answers; the first
      // is gone, with a clear error.
      expect(await sqlRows(`SELECT * FROM ${tableAtSql('gold.connections_now', second.gold!.toVersion)} ORDER BY ALL`, lake)).toEqual(goldNow);
      await expect(sqlRows(`SELECT * FROM ${tableAtSql('gold.connections_now', first.gold!.toVersion)}`, lake)).rejects.toThrow(/No snapshot found/);

      // Bronze moves on and silver has not read it yet: its new files are merged all the same (the
      // change feed still gives their rows per commit; DuckLake 1.4.4's did not, so those tables
      // waited), and the snapshots silver reads from stay.
      await writeSyntheticLanding({ root: landing, files: 3, rowsPerFile: 1500, scenarios: scenario, prefix: 'c', seed: 3 });
      await client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId('pipeline-bronze'), args: [{ ...input, layers: ['bronze'] }] });
      const unread = await maintain();
      const bronzeCompaction = unread.tables.find((t) => t.table === `bronze.${source.name}`)!;
      expect(bronzeCompaction.merged.files).toBeGreaterThanOrEqual(3);
      expect(bronzeCompaction.files.after).toBeLessThan(bronzeCompaction.files.before);
      expect(unread.floorSnapshot).toBe(second.bronze[0].toVersion + 1);
      const third = (await pass())!;
      expect(third.silver).toMatchObject({ batches: 1, details: { rowsIn: 4500 } });
      expect(await one(lake, `SELECT count(*) FROM bronze.${source.name}`)).toBe(16 * 1500);
      expect(await one(lake, `SELECT sum(rows) FROM silver.dq_counts WHERE check_name = 'rows_in'`)).toBe(16 * 1500);

      // After two compactions and a gold refresh that changed the answer, time travel to the
      // second refresh (inside the retention) still gives exactly what gold said then.
      await maintain({ expireOlderThan: retentionStart });
      expect(await sqlRows(`SELECT * FROM gold.connections_now ORDER BY ALL`, lake)).not.toEqual(goldNow);
      expect(await sqlRows(`SELECT * FROM ${tableAtSql('gold.connections_now', second.gold!.toVersion)} ORDER BY ALL`, lake)).toEqual(goldNow);
    }, { taskQueue, deps: { lake, landingDir: landing } });
  } finally {
    await terminateAll(ids);
  }
});

test('maintenance says per table what it flushed out of the catalog and what it merged; merging direct batches with flushed rows writes less than it replaces', async () => {
  const { dir, landing, lake, source, ids, input, scenario, taskQueue } = oneSourceLake('compaction');
  const meta = `__ducklake_metadata_${LAKE}.${lake.catalogSchema}`;
  const liveFiles = async () => Object.fromEntries((await sqlRows<{ name: string; files: string; bytes: string }>(`
    SELECT s.schema_name || '.' || t.table_name AS name, count(d.data_file_id) AS files, coalesce(sum(d.file_size_bytes), 0) AS bytes
    FROM ${meta}.ducklake_table t JOIN ${meta}.ducklake_schema s USING (schema_id)
    LEFT JOIN ${meta}.ducklake_data_file d ON d.table_id = t.table_id AND d.end_snapshot IS NULL
    WHERE t.end_snapshot IS NULL AND s.end_snapshot IS NULL GROUP BY ALL`, lake)).map((r) => [r.name, { files: Number(r.files), bytes: Number(r.bytes) }]));
  try {
    await withWorker(async ({ client }) => {
      const pass = () => client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId('pipeline-cmp'), args: [input] });
      // Three batches of 1,500 rows go straight to Parquet; a micro-batch of 120 rows stays in the
      // catalog until maintenance flushes it, and is merged with them (its row ids lie between theirs).
      await writeSyntheticLanding({ root: landing, files: 1, rowsPerFile: 1500, scenarios: scenario, prefix: 'a' });
      await pass(); // creates every table (DuckLake 0.3 kept this file out of later merges, its schema version being older; 1.0 merges it)
      await writeSyntheticLanding({ root: landing, files: 3, rowsPerFile: 1500, scenarios: scenario, prefix: 'b', seed: 2 });
      await pass();
      await writeSyntheticLanding({ root: landing, files: 2, rowsPerFile: 60, scenarios: scenario, prefix: 'c', seed: 3 });
      await pass();
      const before = await liveFiles();

      const run = await cli(['maintenance', 'run'], { TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS!, NETPULSE_TASK_QUEUE: taskQueue, ...lakeEnv(lake) });
      expect(run.code).toBe(0);
      const bronzeTable = `bronze.${source.name}`;
      expect(run.stdout).toMatch(new RegExp(`${bronzeTable}\\s+4 → 1\\s+\\S+ KiB → \\S+ KiB\\s+120 rows into 1 file, \\S+ KiB\\s+5 files, \\S+ KiB → 1 file, \\S+ KiB`));
      expect(run.stdout).toMatch(/^flushed \d+ rows out of the catalog into \d+ files \(.*\): data moved to Parquet, not growth$/m);
      expect(run.stdout).toMatch(/^\d+ other tables: nothing to flush or merge$/m);
      expect(run.stdout).not.toMatch(/tables compacted/);
      const [logged] = await sqlRows<{ details: string }>(`SELECT details FROM lake.event_log WHERE kind = 'maintenance'`, lake);
      const report = JSON.parse(logged.details) as MaintenanceReport;
      const after = await liveFiles();

      const byTable = Object.fromEntries(report.tables.map((t) => [t.table, t]));
      expect(byTable[bronzeTable]).toMatchObject({ files: { before: 4, after: 1 }, flushed: { rows: 120, files: 1 }, merged: { files: 5, intoFiles: 1 } });
      expect(byTable['silver.events']).toMatchObject({ flushed: { rows: 120, files: 1 } });
      expect(byTable['bronze.quarantine']).toMatchObject({ flushed: { rows: 0, files: 0, bytes: 0 }, merged: { files: 0, intoFiles: 0 } });
      for (const t of report.tables) {
        // What the report says each table had and has is what the catalog says.
        expect({ table: t.table, files: t.files.before, bytes: t.bytes.before }).toEqual({ table: t.table, ...before[t.table] });
        expect({ table: t.table, files: t.files.after, bytes: t.bytes.after }).toEqual({ table: t.table, ...after[t.table] });
      }
      // Merges write less than they replace (DuckLake 0.3's wrote a row id per row, and grew as Parquet v1).
      for (const name of [bronzeTable, 'silver.events']) expect(byTable[name].merged.intoBytes).toBeLessThan(byTable[name].merged.bytes);
      // The lake's live bytes grew by what the flush moved out of the catalog, less what the merges saved.
      const sum = (pick: (t: MaintenanceReport['tables'][number]) => number) => report.tables.reduce((n, t) => n + pick(t), 0);
      expect(report.after.liveBytes - report.before.liveBytes).toBe(sum((t) => t.flushed.bytes) + sum((t) => t.merged.intoBytes - t.merged.bytes));
      expect(sum((t) => t.merged.intoBytes - t.merged.bytes)).toBeLessThan(0);
      expect(sum((t) => t.flushed.bytes)).toBeGreaterThan(0);
    }, { taskQueue, deps: { lake, landingDir: landing } });
  } finally {
    await terminateAll(ids);
    await dropLake(lake).finally(() => rmSync(dir, { recursive: true, force: true }));
  }
});

test('a statement past DuckDB\'s memory limit fails saying which setting to change; the lake stays usable', async () => {
  const lake = testLake(tempDir('memory'));
  process.env.NETPULSE_DUCKDB_MEMORY = '40MB'; // read when this lake's DuckDB instance starts
  try {
    // A list aggregate cannot spill to disk: 20M values need more than 40 MB.
    const failure = withLake(lake, (db) => db.run('SELECT list(i) FROM range(20000000) r(i)'));
    await expect(failure).rejects.toThrow(/^Out of Memory Error: .*DuckDB may use 40MB in this process \(NETPULSE_DUCKDB_MEMORY\): give the layer fewer rows per batch \(maxRowsPerBatch/);
    await expect(failure).rejects.toHaveProperty('cause.message', expect.stringMatching(/^Out of Memory Error/));
  } finally {
    delete process.env.NETPULSE_DUCKDB_MEMORY;
  }
  expect(await withLake(lake, async (db) => (await db.runAndReadAll('SELECT 42 AS n')).getRows())).toEqual([[42]]);
  // A reader's query past the limit is told to ask for less, not to change batches, and the catalog is not blamed.
  const query = await cli(['query', 'SELECT list(i) FROM range(20000000) r(i)'], { ...lakeEnv(lake), NETPULSE_DUCKDB_MEMORY: '40MB' });
  expect(query.code).toBe(1);
  expect(query.stderr).toMatch(/^error: Out of Memory Error: .*DuckDB may use 40MB in this process \(NETPULSE_DUCKDB_MEMORY\): ask for less \(fewer rows or columns, an aggregate instead of the rows, a narrower time range\) or raise the limit/);
  expect(query.stderr).not.toMatch(/catalog|maxRowsPerBatch/);
});

test('each DuckDB instance spills into a folder of its own, deleted when the lake closes or the process exits without closing it', async () => {
  const lake = testLake(tempDir('spill'));
  const tmp = tempDir('spill-tmp'); // the processes' TMPDIR
  // Two instances of one lake in one process (read-write and read-only, as the dashboard has two),
  // each sorting more than its memory limit holds, one at a time and then both at once. When they
  // shared one spill folder, both spilling at once crashed the process (SIGSEGV).
  const script = (close: boolean) => `
    const fs = require('node:fs'), os = require('node:os');
    const { closeLakes, lakeFromEnv, withLake } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'lake', 'catalog.js'))});
    const sort = 'SELECT sum(hash(s) % 1000003 * (rn % 1009))::VARCHAR FROM (SELECT s, row_number() OVER (ORDER BY s) AS rn FROM (SELECT md5(i::VARCHAR) AS s FROM range(2000000) r(i)))';
    const spill = (readOnly) => withLake(lakeFromEnv(), async (db) => {
      await db.run('SET threads = 1');
      return (await db.runAndReadAll(sort)).getRows()[0][0];
    }, { readOnly });
    (async () => {
      const alone = [await spill(false), await spill(true)];
      const together = await Promise.all([spill(false), spill(true)]);
      const open = fs.readdirSync(os.tmpdir()).sort();
      if (${close}) await closeLakes();
      console.log(JSON.stringify({ alone, together, open, pid: process.pid }));
      process.exit(0);
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const run = async (close: boolean) => JSON.parse((await promisify(execFile)(process.execPath, ['-e', script(close)], {
    env: { ...process.env, ...lakeEnv(lake), TMPDIR: tmp, NETPULSE_DUCKDB_MEMORY: '60MB' },
  })).stdout) as { alone: string[]; together: string[]; open: string[]; pid: number };
  for (const close of [true, false]) {
    const { alone, together, open, pid } = await run(close);
    expect(together).toEqual(alone);
    expect(open).toEqual([`netpulse-duckdb-${pid}-1`, `netpulse-duckdb-${pid}-2`]);
    expect(readdirSync(tmp)).toEqual([]);
  }
});
