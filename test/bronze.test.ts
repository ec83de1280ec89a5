// Bronze availableNow ingestion on the real Temporal dev server and a real DuckDB lake file.
import { copyFileSync, mkdirSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bronzeActivities } from '../activities/bronze';
import { silverActivities } from '../activities/silver';
import { writeSyntheticLanding } from '../bench/landing-maker';
import { LAKE, type LakeConfig } from '../lake/catalog';
import { changeFeedSql } from '../lake/changes';
import { withConnection } from '../lake/duckdb';
import { bronzeTable as bronzeTableName, bronzeWorkflowId, type IngestResult, type PlanResult } from '../rules/bronze';
import { DEFAULT_SCENARIOS } from '../rules/generator';
import type { PassSummary } from '../rules/pass';
import { bronzeAvailableNow, bronzeStatusQuery, runPassUpdate } from '../workflows/bronze';
import { generatorWorkflow } from '../workflows/generator';
import {
  activityEnvironment, cli, closeTestResources, failFirstAttemptAfterWork, lakeEnv, startWorkerProcess, stopProcess, testSources, sqlRows, tempDir, terminateAll, testClient, testLake, uniqueId, withWorker,
} from './helpers';

afterAll(closeTestResources);

function setup(tag: string) {
  const dir = tempDir(tag);
  const landing = path.join(dir, 'landing');
  const lake = testLake(dir);
  const sources = testSources(`${tag}_${Math.random().toString(36).slice(2, 6)}`);
  return { dir, landing, lake, sources, ids: sources.map((s) => bronzeWorkflowId(s)), deps: { lake, landingDir: landing } };
}

const count = async (lake: LakeConfig, sql: string) => Number(Object.values((await sqlRows(sql, lake))[0])[0]);

test('ingests exactly the landing rows per source with lineage; a second run adds nothing', async () => {
  const { landing, lake, sources, ids, deps } = setup('exact');
  try {
    await withWorker(async ({ client, taskQueue }) => {
      await client.workflow.execute(generatorWorkflow, {
        taskQueue, workflowId: uniqueId('gen'), args: [{ ticks: 3, intervalSeconds: 0, seed: 5, landingPath: landing }],
      });
      const first = await client.workflow.execute(bronzeAvailableNow, {
        taskQueue, workflowId: uniqueId('bronze-run'), args: [{ sources, landingPath: landing, options: { maxFilesPerBatch: 2 } }],
      });
      expect(first.map((s) => [s.files, s.rows, s.batches])).toEqual(DEFAULT_SCENARIOS.map((s) => [3, 3 * s.count, 2]));

      for (const [i, source] of sources.entries()) {
        expect(await count(lake, `SELECT count(*) FROM bronze.${source.name}`)).toBe(3 * DEFAULT_SCENARIOS[i].count);
      }
      // Lineage, row by row, against the landing files themselves.
      const [source] = sources;
      const lineage = await sqlRows<{ file: string; label: string; mtime: string; status: boolean; batches: string; versions: string; rows: string }>(`
        SELECT rastreamento_source AS file, any_value(source) AS label, any_value(data_arquivo_ingestao)::VARCHAR AS mtime,
               bool_and(status) AS status, count(DISTINCT _batch_id) AS batches, count(*) AS rows
        FROM bronze.${source.name} GROUP BY ALL ORDER BY file`, lake);
      expect(lineage).toHaveLength(3);
      for (const row of lineage) {
        expect(row.file.startsWith(path.join(landing, 'Computador', 'Conectado'))).toBe(true);
        expect(row).toMatchObject({ label: 'Computador Conectado', status: true, batches: '1', rows: '40' });
        expect(Date.parse(`${row.mtime.replace(' ', 'T')}Z`)).toBe(Math.floor(statSync(row.file).mtimeMs));
      }
      // The same rows as the files, column for column.
      expect(await count(lake, `
        SELECT count(*) FROM (
          SELECT * EXCLUDE (filename) FROM read_parquet('${landing}/Computador/Conectado/*.parquet', filename = true)
          EXCEPT ALL
          SELECT Nome, Endereco, Ip, Hora_Conexao, Dispositivo_de_Acesso, Velocidade_de_Conexao, Status_Conexao FROM bronze.${source.name})`)).toBe(0);

      // Second run: nothing new, nothing added; asked through the workflow update this time.
      const again = await client.workflow.getHandle(ids[0]).executeUpdate(runPassUpdate);
      expect(again).toMatchObject({ batches: 0, files: 0, rows: 0 });
      expect(await count(lake, `SELECT count(*) FROM bronze.${source.name}`)).toBe(120);
      const status = await client.workflow.getHandle(ids[0]).query(bronzeStatusQuery);
      expect(status).toMatchObject({ filesIngested: 3, rowsIngested: 120, nextBatchSeq: 2, lagFiles: 0, passes: 2, schemaVersion: 1 });
      expect(status.version).toBe(status.lastCommit!.version); // the table's version is its last batch's snapshot
    }, { deps });
  } finally {
    await terminateAll(ids);
  }
});

test('a batch that fails after its insert, before reporting, is retried without duplicates', async () => {
  const { landing, lake, sources, ids, deps } = setup('retry');
  await writeSyntheticLanding({ root: landing, files: 8, rowsPerFile: 100 });
  try {
    await withWorker(async ({ client, taskQueue }) => {
      const summaries = await client.workflow.execute(bronzeAvailableNow, {
        taskQueue, workflowId: uniqueId('bronze-run'), args: [{ sources: sources.slice(0, 1), landingPath: landing }],
      });
      expect(summaries[0]).toMatchObject({ batches: 1, files: 2, rows: 200 });
      const status = await client.workflow.getHandle(ids[0]).query(bronzeStatusQuery);
      expect(status.lastCommit).toMatchObject({ alreadyCommitted: true, rows: 200 }); // attempt 2 found attempt 1's commit
    }, { deps, interceptors: failFirstAttemptAfterWork('ingestBronzeBatch') });
    expect(await count(lake, `SELECT count(*) FROM bronze.${sources[0].name}`)).toBe(200);
    expect(await count(lake, `SELECT count(*) FROM ${LAKE}.snapshots() WHERE commit_message LIKE '%bronze.${sources[0].name}:%'`)).toBe(1);
  } finally {
    await terminateAll(ids);
  }
});

test('a worker killed with SIGKILL in the middle of a batch: restarted, the run completes exactly', async () => {
  const { landing, lake, sources, ids } = setup('kill');
  const source = sources[0];
  const files = await writeSyntheticLanding({ root: landing, files: 160, rowsPerFile: 20_000, scenarios: [DEFAULT_SCENARIOS[0]] });
  const taskQueue = uniqueId('tq-kill');
  const env = { TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS!, NETPULSE_TASK_QUEUE: taskQueue, NETPULSE_LANDING_DIR: landing, ...lakeEnv(lake) };
  const client = await testClient();
  let worker = startWorkerProcess(env);
  try {
    const run = await client.workflow.start(bronzeAvailableNow, {
      taskQueue, workflowId: uniqueId('bronze-run'),
      args: [{ sources: [source], options: { maxFilesPerBatch: 40, maxRowsPerBatch: 1_000_000, heartbeatTimeoutSeconds: 2 } }],
    });
    // Wait until an ingest batch is running on the worker, then kill it outright.
    let killedDuring: string | undefined;
    for (let i = 0; i < 600 && !killedDuring; i++) {
      const pending = await client.workflow.getHandle(ids[0]).describe().then((d) => d.raw.pendingActivities ?? [], () => []);
      const ingest = pending.find((a) => a.activityType?.name === 'ingestBronzeBatch' && a.lastStartedTime);
      if (ingest) {
        await stopProcess(worker, 'SIGKILL');
        killedDuring = String(ingest.activityId);
      } else await new Promise((r) => setTimeout(r, 50));
    }
    expect(killedDuring).toBeDefined();
    worker = startWorkerProcess(env);
    const [summary] = await run.result();
    expect(summary.files).toBe(160);
    expect(summary.rows).toBe(160 * 20_000);
  } finally {
    await terminateAll(ids);
    await stopProcess(worker, 'SIGTERM');
  }
  expect(await count(lake, `SELECT count(*) FROM bronze.${source.name}`)).toBe(files.length * 20_000);
  expect(await count(lake, `SELECT count(*) FROM (SELECT rastreamento_source FROM bronze.${source.name} GROUP BY 1 HAVING count(*) <> 20000)`)).toBe(0);
  expect(await count(lake, `SELECT count(*) FROM lake.file_ledger WHERE outcome = 'ingested'`)).toBe(160);
  expect(await count(lake, `SELECT count(*) FROM ${LAKE}.snapshots() WHERE commit_message IS NOT NULL`)).toBe(4);
});

test('new columns evolve the schema; conflicting types are rescued; nothing is lost', async () => {
  const { landing, lake, sources, ids, deps } = setup('schema');
  const source = sources[1]; // Celular/Conectado
  const dir = path.join(landing, 'Celular', 'Conectado');
  const [base] = await writeSyntheticLanding({ root: landing, files: 1, rowsPerFile: 30, scenarios: [DEFAULT_SCENARIOS[1]], prefix: 'a' });
  const queue = uniqueId('tq'); // the source's owner workflow lives on it: a later worker serves the same queue
  try {
    await withWorker(async ({ client, taskQueue }) => {
      const run = () => client.workflow.execute(bronzeAvailableNow, { taskQueue, workflowId: uniqueId('bronze-run'), args: [{ sources: [source], landingPath: landing }] });
      await run();
      await withConnection(':memory:', async (db) => {
        await db.run(`COPY (SELECT *, 'srv-' || (row_number() OVER () % 3) AS Servidor FROM read_parquet('${base}')) TO '${dir}/b_extra.parquet'`);
        await db.run(`COPY (SELECT * REPLACE ('rápida' AS Velocidade_de_Conexao) FROM read_parquet('${base}') LIMIT 10) TO '${dir}/c_conflict.parquet'`);
      });
      const [summary] = await run();
      expect(summary).toMatchObject({ files: 2, rows: 40, quarantined: 0 });
    }, { deps, taskQueue: queue });
    const t = `bronze.${source.name}`;
    expect(await count(lake, `SELECT count(*) FROM ${t}`)).toBe(70);
    expect(await count(lake, `SELECT count(*) FROM ${t} WHERE Servidor IS NULL AND rastreamento_source NOT LIKE '%b_extra%'`)).toBe(40);
    expect(await count(lake, `SELECT count(*) FROM ${t} WHERE Servidor LIKE 'srv-%' AND rastreamento_source LIKE '%b_extra%'`)).toBe(30);
    const rescued = await sqlRows<{ v: string | null; r: string }>(`SELECT Velocidade_de_Conexao::VARCHAR AS v, _rescued_data::VARCHAR AS r FROM ${t} WHERE rastreamento_source LIKE '%c_conflict%'`, lake);
    expect(rescued).toHaveLength(10);
    for (const row of rescued) {
      expect(row.v).toBeNull();
      expect(JSON.parse(row.r)).toEqual({ Velocidade_de_Conexao: 'rápida', _file_path: path.join(dir, 'c_conflict.parquet') });
    }
    expect(await count(lake, `SELECT count(*) FROM ${t} WHERE _rescued_data IS NOT NULL`)).toBe(10);
    const versions = await sqlRows(`SELECT schema_version, batch_id, column_name, column_type FROM lake.schema_versions WHERE table_name = '${t}' AND schema_version > 1`, lake);
    expect(versions).toEqual([{ schema_version: 2, batch_id: `${t}:1`, column_name: 'Servidor', column_type: 'VARCHAR' }]);

    // An evolved table keeps inlining: its micro-batches after the new column stay in the catalog
    // and commit. (DuckLake 1.4.4 misread rows inlined after an ADD COLUMN, so addColumn turned
    // inlining off per table; with it on again, the next batch failed on every attempt: "INSERT has
    // more expressions than target columns". test/ducklake-issues.test.ts, issue 1.)
    const inliningLimit = async () => (await sqlRows<{ value: string }>(`SELECT value FROM ${LAKE}.options()
      WHERE option_name = 'data_inlining_row_limit' AND scope = 'TABLE' AND scope_entry = '${t}'`, lake)).map((r) => r.value);
    expect(await inliningLimit()).toEqual([]);
    await sqlRows(`CALL ${LAKE}.set_option('data_inlining_row_limit', 10, schema => 'bronze', table_name => '${source.name}')`, lake);
    await writeSyntheticLanding({ root: landing, files: 1, rowsPerFile: 5, scenarios: [DEFAULT_SCENARIOS[1]], prefix: 'd' });
    await withWorker(async ({ client, taskQueue }) => {
      const [summary] = await client.workflow.execute(bronzeAvailableNow, { taskQueue, workflowId: uniqueId('bronze-run'), args: [{ sources: [source], landingPath: landing }] });
      expect(summary).toMatchObject({ files: 1, rows: 5 });
    }, { deps, taskQueue: queue });
    expect(await inliningLimit()).toEqual(['10']);
    expect(await count(lake, `SELECT count(*) FROM ${t}`)).toBe(75);
    expect(await count(lake, `SELECT count(*) FROM ${t} WHERE Servidor LIKE 'srv-%' AND rastreamento_source LIKE '%b_extra%'`)).toBe(30);
  } finally {
    await terminateAll(ids);
  }
});

test('corrupt, truncated and zero-byte files are quarantined once; the rest is ingested; temp files are never taken', async () => {
  const { landing, lake, sources, ids, deps } = setup('bad');
  const source = sources[3]; // Celular/Desconectado
  const dir = path.join(landing, 'Celular', 'Desconectado');
  const [good] = await writeSyntheticLanding({ root: landing, files: 1, rowsPerFile: 60, scenarios: [DEFAULT_SCENARIOS[3]] });
  writeFileSync(path.join(dir, 'corrupt.parquet'), 'this is not parquet at all');
  copyFileSync(good, path.join(dir, 'truncated.parquet'));
  truncateSync(path.join(dir, 'truncated.parquet'), Math.floor(statSync(good).size / 2));
  writeFileSync(path.join(dir, 'empty.parquet'), '');
  copyFileSync(good, path.join(dir, '.in-flight.parquet.tmp'));
  try {
    await withWorker(async ({ client, taskQueue }) => {
      const run = () => client.workflow.execute(bronzeAvailableNow, {
        taskQueue, workflowId: uniqueId('bronze-run'), args: [{ sources: [source], landingPath: landing, options: { emptyFileGraceSeconds: 0 } }],
      });
      expect((await run())[0]).toMatchObject({ files: 1, rows: 60, quarantined: 3 });
      expect((await run())[0]).toMatchObject({ batches: 0, files: 0, quarantined: 0 });
    }, { deps });
    const quarantine = await sqlRows<{ file: string; error: string }>(
      `SELECT regexp_extract(path, '[^/]+$') AS file, error FROM bronze.quarantine ORDER BY file`, lake);
    expect(quarantine.map((q) => q.file)).toEqual(['corrupt.parquet', 'empty.parquet', 'truncated.parquet']);
    expect(quarantine[0].error).toMatch(/^unreadable parquet: /);
    expect(quarantine[1].error).toBe('empty file (0 bytes)');
    expect(quarantine[2].error).toMatch(/^unreadable parquet/);
    expect(await count(lake, `SELECT count(*) FROM bronze.${source.name}`)).toBe(60);
  } finally {
    await terminateAll(ids);
  }
});

test('a file that vanishes between planning and ingesting is quarantined, the batch commits', async () => {
  const { landing, lake, sources } = setup('vanish');
  const [kept, gone] = await writeSyntheticLanding({ root: landing, files: 2, rowsPerFile: 5, scenarios: [DEFAULT_SCENARIOS[0]] });
  const activities = bronzeActivities({ lake, landingDir: landing });
  const env = activityEnvironment(); // activity context only; DuckDB and files are real
  const plan: PlanResult = await env.run(activities.planBronzeBatch, { source: sources[0], maxFiles: 10, maxBytes: 1e9, maxRows: 1e9, emptyFileGraceSeconds: 0 });
  expect(plan.files.map((f) => f.path).sort()).toEqual([kept, gone].sort());
  // The row budget (read from the footers) cuts a batch at whole files, keeping at least one.
  const bounded: PlanResult = await env.run(activities.planBronzeBatch, { source: sources[0], maxFiles: 10, maxBytes: 1e9, maxRows: 7, emptyFileGraceSeconds: 0 });
  expect(bounded.files).toHaveLength(1);
  expect(bounded.waiting).toBe(2);
  await import('node:fs/promises').then((fs) => fs.rm(gone));
  const result: IngestResult = await env.run(activities.ingestBronzeBatch, { source: sources[0], batchId: 'b:0', batchSeq: 0, files: plan.files });
  expect(result).toMatchObject({ rows: 5, filesIngested: 1, filesQuarantined: 1 });
  const [q] = await sqlRows<{ path: string; error: string }>('SELECT path, error FROM bronze.quarantine', lake);
  expect(q).toEqual({ path: gone, error: 'vanished: the file was listed but no longer exists' });
  // Retrying the same batch id is a no-op that returns the earlier commit.
  expect(await env.run(activities.ingestBronzeBatch, { source: sources[0], batchId: 'b:0', batchSeq: 0, files: plan.files }))
    .toMatchObject({ alreadyCommitted: true, rows: 5, version: result.version });
  expect(await count(lake, `SELECT count(*) FROM ${LAKE}.snapshots() WHERE commit_message IS NOT NULL`)).toBe(1);
});

test('a 2,000-file backlog goes in bounded batches with a compact checkpoint; the change feed returns exactly the batches between versions', async () => {
  const { landing, lake, sources, ids, deps } = setup('backlog');
  const source = sources[0];
  const scenario = [DEFAULT_SCENARIOS[0]];
  await writeSyntheticLanding({ root: landing, files: 2000, rowsPerFile: 10, scenarios: scenario, prefix: 'a' });
  let second: PassSummary | undefined;
  try {
    await withWorker(async ({ client, taskQueue }) => {
      const run = () => client.workflow.execute(bronzeAvailableNow, {
        taskQueue, workflowId: uniqueId('bronze-run'), args: [{ sources: [source], landingPath: landing, options: { maxFilesPerBatch: 300, batchesPerRun: 5 } }],
      });
      const [first] = await run();
      expect(first).toMatchObject({ batches: 7, files: 2000, rows: 20_000 });
      await writeSyntheticLanding({ root: landing, files: 30, rowsPerFile: 7, scenarios: scenario, prefix: 'b', seed: 2 });
      [second] = await run();
      expect(second).toMatchObject({ batches: 1, files: 30, rows: 210, fromVersion: first.toVersion });

      const handle = client.workflow.getHandle(ids[0]);
      const described = await handle.describe();
      const status = await handle.query(bronzeStatusQuery);
      expect(status).toMatchObject({ filesIngested: 2030, rowsIngested: 20_210, version: second!.toVersion, nextBatchSeq: 8 });
      expect(JSON.stringify(status).length).toBeLessThan(2048); // counters and marks, not file lists
      // The run that ingested 7 batches continued as new: the current run's history is short.
      expect(described.historyLength).toBeLessThan(60);
      expect(described.raw.workflowExecutionInfo?.firstRunId).not.toBe(described.runId);
    }, { deps });
    const table = `bronze.${source.name}`;
    // Each batch is a snapshot; the feed between the 6th and the 8th holds exactly batches 7 and 8.
    const snapshots = (await sqlRows<{ id: string }>(`SELECT snapshot_id AS id FROM ${LAKE}.snapshots()
      WHERE commit_message LIKE 'STREAMING UPDATE ${table}:%' ORDER BY 1`, lake)).map((r) => Number(r.id));
    expect(snapshots).toHaveLength(8);
    expect(snapshots[7]).toBe(second!.toVersion);
    const feed = await sqlRows<{ change_type: string; snapshot_id: string; batch: string; n: string }>(`
      SELECT change_type, snapshot_id, any_value(_batch_id) AS batch, count(*) AS n
      FROM (${changeFeedSql(table, snapshots[5], snapshots[7])}) GROUP BY ALL ORDER BY 2`, lake);
    // batch 7 = the backlog's last (2000 - 6 × 300 files × 10 rows), batch 8 = the 30 new files
    expect(feed).toEqual([
      { change_type: 'insert', snapshot_id: String(snapshots[6]), batch: `${table}:6`, n: '2000' },
      { change_type: 'insert', snapshot_id: String(snapshots[7]), batch: `${table}:7`, n: '210' },
    ]);
  } finally {
    await terminateAll(ids);
  }
});

test('a file is typed by its own schema, never a neighbour\'s: the conflicting file first, last or alone', async () => {
  const { landing, lake, sources } = setup('ownschema');
  const source = sources[0];
  const dir = path.join(landing, 'Computador', 'Conectado');
  const good = await writeSyntheticLanding({ root: landing, files: 6, rowsPerFile: 20, scenarios: [DEFAULT_SCENARIOS[0]], prefix: 'good' });
  const info = (file: string) => ({ path: file, size: statSync(file).size, mtimeMs: Math.floor(statSync(file).mtimeMs) });
  /** A copy of a good file whose speed is text ('100 Mbps'): a type conflict with the table. */
  const odd = async (name: string) => {
    const file = path.join(dir, `${name}.parquet`);
    await withConnection(':memory:', (db) => db.run(
      `COPY (SELECT * REPLACE (Velocidade_de_Conexao::VARCHAR || ' Mbps' AS Velocidade_de_Conexao) FROM read_parquet('${good[0]}')) TO '${file}'`));
    return info(file);
  };
  const activities = bronzeActivities({ lake, landingDir: landing });
  const env = activityEnvironment();
  // The table exists with Velocidade_de_Conexao BIGINT, as in production.
  await env.run(activities.ingestBronzeBatch, { source, batchId: 'own:0', batchSeq: 0, files: [info(good[0])] });
  const batches = [
    [await odd('odd_first'), info(good[1]), info(good[2])],
    [info(good[3]), info(good[4]), await odd('odd_last')],
    [await odd('odd_alone')],
  ];
  for (const [i, files] of batches.entries()) {
    expect(await env.run(activities.ingestBronzeBatch, { source, batchId: `own:${i + 1}`, batchSeq: i + 1, files }))
      .toMatchObject({ rows: 20 * files.length, filesQuarantined: 0 });
  }
  const byFile = await sqlRows<{ file: string; rescued: string; typed: string }>(`
    SELECT regexp_extract(rastreamento_source, '[^/]+$') AS file, count(_rescued_data) AS rescued, count(Velocidade_de_Conexao) AS typed
    FROM bronze.${source.name} GROUP BY 1 ORDER BY 1`, lake);
  expect(byFile).toEqual([
    ...['good_Computador_Conectado_0000000', 'good_Computador_Conectado_0000001', 'good_Computador_Conectado_0000002',
      'good_Computador_Conectado_0000003', 'good_Computador_Conectado_0000004'].map((f) => ({ file: `${f}.parquet`, rescued: '0', typed: '20' })),
    ...['odd_alone', 'odd_first', 'odd_last'].map((f) => ({ file: `${f}.parquet`, rescued: '20', typed: '0' })),
  ].sort((a, b) => a.file.localeCompare(b.file)));
});

test('a symbolic link in a source folder is never followed: quarantined with the reason and counted in status, its neighbours ingested', async () => {
  const { landing, lake, sources, ids, deps } = setup('symlink');
  const source = sources[0];
  const dir = path.join(landing, 'Computador', 'Conectado');
  const [good] = await writeSyntheticLanding({ root: landing, files: 1, rowsPerFile: 10, scenarios: [DEFAULT_SCENARIOS[0]] });
  // A parquet file outside the landing zone, and a host file, each behind a link in the source folder.
  const [outside] = await writeSyntheticLanding({ root: path.join(landing, '..', 'outside'), files: 1, rowsPerFile: 7, scenarios: [DEFAULT_SCENARIOS[0]] });
  symlinkSync(outside, path.join(dir, 'outside.parquet'));
  symlinkSync('/etc/passwd', path.join(dir, 'passwd.parquet'));
  try {
    await withWorker(async ({ client, taskQueue }) => {
      const [pass] = await client.workflow.execute(bronzeAvailableNow, { taskQueue, workflowId: uniqueId('bronze-run'), args: [{ sources: [source], landingPath: landing }] });
      expect(pass).toMatchObject({ files: 1, rows: 10, quarantined: 2 });
      const [again] = await client.workflow.execute(bronzeAvailableNow, { taskQueue, workflowId: uniqueId('bronze-run'), args: [{ sources: [source], landingPath: landing }] });
      expect(again).toMatchObject({ files: 0, quarantined: 0 }); // taken once
    }, { deps });
    expect(await sqlRows(`SELECT DISTINCT rastreamento_source AS file FROM bronze.${source.name}`, lake)).toEqual([{ file: good }]);
    expect(await sqlRows(`SELECT regexp_extract(path, '[^/]+$') AS file, error FROM bronze.quarantine ORDER BY 1`, lake)).toEqual(
      ['outside.parquet', 'passwd.parquet'].map((file) => ({ file, error: expect.stringMatching(/^a symbolic link: never followed/) })));
    const status = await cli(['status', '--json'], lakeEnv(lake));
    expect((JSON.parse(status.stdout) as { quarantine: { layer: string; quarantined: number }[] }).quarantine).toContainEqual({ layer: 'bronze', quarantined: 2, tables: 1 });
  } finally {
    await terminateAll(ids);
  }
});

test('file names are taken literally, never as globs: a*.parquet, a?.parquet and a[1].parquet beside a1 and a2', async () => {
  const { landing, lake, sources } = setup('globs');
  const source = sources[0];
  const dir = path.join(landing, 'Computador', 'Conectado');
  const [base] = await writeSyntheticLanding({ root: path.join(landing, '..', 'base'), files: 1, rowsPerFile: 10, scenarios: [DEFAULT_SCENARIOS[0]] });
  // Each file has a row count of its own, so a file read twice or under another's name shows.
  const names = { a1: 1, a2: 2, 'a*': 3, 'a?': 4, 'a[1]': 5 };
  mkdirSync(dir, { recursive: true });
  await withConnection(':memory:', async (db) => {
    for (const [name, rows] of Object.entries(names)) {
      await db.run(`COPY (SELECT * FROM read_parquet('${base}') LIMIT ${rows}) TO '${path.join(dir, `${name}.parquet`)}' (FORMAT parquet)`);
    }
  });
  const activities = bronzeActivities({ lake, landingDir: landing });
  const env = activityEnvironment();
  const plan: PlanResult = await env.run(activities.planBronzeBatch, { source, maxFiles: 10, maxBytes: 1e9, maxRows: 1e9, emptyFileGraceSeconds: 0 });
  expect(plan.files).toHaveLength(5);
  expect(await env.run(activities.ingestBronzeBatch, { source, batchId: 'glob:0', batchSeq: 0, files: plan.files }))
    .toMatchObject({ rows: 15, filesIngested: 5, filesQuarantined: 0 });
  const byFile = await sqlRows<{ file: string; n: string }>(`
    SELECT regexp_extract(rastreamento_source, '[^/]+$') AS file, count(*) AS n FROM bronze.${source.name} GROUP BY 1 ORDER BY 1`, lake);
  expect(byFile).toEqual(Object.entries(names).map(([name, rows]) => ({ file: `${name}.parquet`, n: String(rows) }))
    .sort((a, b) => (a.file < b.file ? -1 : 1)));
});

test('a checkpoint ahead of the lake is an error, not a silent gap; an unreadable footer does not lift the row bound', async () => {
  const { landing, lake, sources } = setup('ahead');
  const source = sources[0];
  const files = await writeSyntheticLanding({ root: landing, files: 4, rowsPerFile: 100, scenarios: [DEFAULT_SCENARIOS[0]] });
  writeFileSync(path.join(path.dirname(files[0]), 'broken.parquet'), 'PAR1 but not a parquet file');
  const activities = bronzeActivities({ lake, landingDir: landing });
  const env = activityEnvironment();
  // 150 rows a batch: one 100-row file, though a footer in the plan cannot be read.
  const plan: PlanResult = await env.run(activities.planBronzeBatch, { source, maxFiles: 10, maxBytes: 1e9, maxRows: 150, emptyFileGraceSeconds: 0 });
  expect(plan.waiting).toBe(5);
  expect(plan.files.length).toBeLessThanOrEqual(2);
  expect(plan.files.filter((f) => !f.path.endsWith('broken.parquet'))).toHaveLength(1);
  // An owner whose checkpoint says batch 3 against a lake that never saw batches 0-2.
  await expect(env.run(activities.ingestBronzeBatch, { source, batchId: `${bronzeTableName(source)}:3`, batchSeq: 3, files: plan.files }))
    .rejects.toMatchObject({ type: 'CheckpointAheadOfLake' });
  const silver = silverActivities({ lake, landingDir: landing });
  await expect(env.run(silver.planSilverBatch, { bronzeSnapshot: 1_000_000, maxRows: 1000 }))
    .rejects.toMatchObject({ type: 'CheckpointAheadOfLake', message: expect.stringMatching(/reset --keep-landing/) });
});

test('a file being written is retried, a bad one quarantined; once fixed it is taken again after requeue, once; its quarantine row stays as history', async () => {
  const { landing, lake, sources } = setup('requeue');
  const source = sources[0];
  const [good] = await writeSyntheticLanding({ root: landing, files: 1, rowsPerFile: 30, scenarios: [DEFAULT_SCENARIOS[0]] });
  const broken = path.join(path.dirname(good), 'late.parquet');
  writeFileSync(broken, 'half a file');
  const activities = bronzeActivities({ lake, landingDir: landing });
  const env = activityEnvironment();
  const planRequest = (emptyFileGraceSeconds: number) => ({ source, maxFiles: 10, maxBytes: 1e9, maxRows: 1e9, emptyFileGraceSeconds });
  const plan = () => env.run(activities.planBronzeBatch, planRequest(0)) as Promise<PlanResult>;
  // Within the grace period a file without a footer may still be being written: retried, not quarantined.
  await expect(env.run(activities.ingestBronzeBatch, { source, batchId: `${bronzeTableName(source)}:0`, batchSeq: 0, plan: planRequest(60) }))
    .rejects.toMatchObject({ type: 'LandingFileNotReady', nonRetryable: false });
  expect(await count(lake, `SELECT count(*) FROM lake.file_ledger`)).toBe(0);
  // Past it, the file is bad: quarantined, and the batch (planned inside the activity) takes the good one.
  expect(await env.run(activities.ingestBronzeBatch, { source, batchId: `${bronzeTableName(source)}:0`, batchSeq: 0, plan: planRequest(0) }))
    .toMatchObject({ rows: 30, filesQuarantined: 1, waitingAfter: 0 });
  copyFileSync(good, broken); // the producer writes the file again, whole
  expect((await plan()).waiting).toBe(0); // the ledger remembers it as quarantined

  expect(await cli(['requeue', '--source', 'x; DROP TABLE lake.file_ledger'], lakeEnv(lake))).toMatchObject({ code: 2 });
  const requeued = await cli(['requeue', '--source', bronzeTableName(source), '--path', 'late.parquet'], lakeEnv(lake));
  expect(requeued).toMatchObject({ code: 0, stdout: expect.stringMatching(/^1 quarantined files requeued:\n.*late\.parquet/) });
  const second = await plan();
  expect(second.files.map((f) => path.basename(f.path))).toEqual(['late.parquet']);
  expect(await env.run(activities.ingestBronzeBatch, { source, batchId: `${bronzeTableName(source)}:1`, batchSeq: 1, files: second.files }))
    .toMatchObject({ rows: 30, filesIngested: 1, filesQuarantined: 0 });
  expect(await count(lake, `SELECT count(*) FROM bronze.${source.name}`)).toBe(60);
  expect(await count(lake, `SELECT count(*) FROM bronze.quarantine`)).toBe(1);
  expect(await sqlRows(`SELECT outcome FROM lake.file_ledger WHERE path = '${broken}'`, lake)).toEqual([{ outcome: 'ingested' }]);
  expect(await cli(['requeue'], lakeEnv(lake))).toMatchObject({ code: 0, stdout: 'no quarantined files match\n' });
});
