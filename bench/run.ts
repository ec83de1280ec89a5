// Benchmarks: the pipeline against DuckDB's own ingest limit on the same files, Temporal's
// overhead per batch, continuous landing→gold latency, worker memory. One run, numbers side by
// side, written to bench/results/<date>.{md,json}. Never a timed test.
//
//   npm run bench                       # small + medium + latency (about 5 minutes here)
//   npm run bench -- --sizes small,medium,large --latency-seconds 60
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { withConnection, sqlString, closeAllInstances } from '../lake/duckdb';
import { DEFAULT_SOURCES } from '../rules/bronze';
import { DEFAULT_SCENARIOS } from '../rules/generator';
import { freePort, startDevServer } from '../scripts/dev-server';
import { bronzeAvailableNow } from '../workflows/bronze';
import { medallionPipeline, pipelineStatusQuery } from '../workflows/pipeline';
import { writeSyntheticLanding } from './landing-maker';
import { config } from '../config';

const SIZES: Record<string, { files: number; rows: number }> = {
  small: { files: 200, rows: 250 },
  medium: { files: 2000, rows: 500 },
  large: { files: 200, rows: 50_000 },
};

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const root = config.projectRoot;
const log = (message: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);

interface Worker { process: ChildProcess; taskQueue: string; lakeFile: string; metricsUrl: string }

async function startWorker(address: string, lakeFile: string, landing: string): Promise<Worker> {
  const taskQueue = `bench-${Date.now().toString(36)}`;
  const metrics = `127.0.0.1:${await freePort()}`;
  const child = spawn(process.execPath, [path.join(root, 'dist', 'worker.js')], {
    env: {
      ...process.env, TEMPORAL_ADDRESS: address, NETPULSE_TASK_QUEUE: taskQueue, NETPULSE_LAKE_FILE: lakeFile, NETPULSE_LANDING_DIR: landing,
      NETPULSE_LOG_LEVEL: 'WARN', NETPULSE_METRICS_ADDRESS: metrics,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return { process: child, taskQueue, lakeFile, metricsUrl: `http://${metrics}/metrics` };
}

/**
 * Seconds spent in activity code per activity type, from the worker's own Temporal metrics
 * (activity and local activity execution latency histograms, in ms); history alone does not
 * time local activities.
 */
async function activitySeconds(worker: Worker): Promise<Record<string, number>> {
  const text = await (await fetch(worker.metricsUrl)).text();
  const totals: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = line.match(/^temporal_(?:local_)?activity_execution_latency_sum\{([^}]*)\} ([0-9.e+]+)/);
    const type = m?.[1].match(/activity_type="([^"]+)"/)?.[1];
    if (m && type) totals[type] = (totals[type] ?? 0) + Number(m[2]) / 1000;
  }
  return totals;
}

const sum = (values: Record<string, number>) => Object.values(values).reduce((a, b) => a + b, 0);
const minus = (after: Record<string, number>, before: Record<string, number>) =>
  Object.fromEntries(Object.entries(after).map(([k, v]) => [k, +(v - (before[k] ?? 0)).toFixed(3)]));

/** Peak resident memory of a process (VmHWM), in MiB. */
function peakRssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmHWM'));
  return Math.round(Number(line?.match(/\d+/)?.[0] ?? 0) / 1024);
}

async function stopWorker(worker: Worker): Promise<void> {
  const exited = new Promise((r) => worker.process.once('exit', r));
  worker.process.kill('SIGTERM');
  await exited;
}

/** Seconds for one INSERT INTO t <select> FROM read_parquet(files) and its checkpoint, in a fresh database. */
async function timeDuckDbInsert(file: string, files: string[], select: string): Promise<number> {
  const from = `FROM read_parquet([${files.map(sqlString).join(', ')}])`;
  const seconds = await withConnection(file, async (db) => {
    await db.run(`CREATE TABLE t AS ${select} ${from} LIMIT 0`);
    const t = Date.now(); // the INSERT and its checkpoint only
    await db.run(`INSERT INTO t ${select} ${from}`);
    await db.run('CHECKPOINT');
    return (Date.now() - t) / 1000;
  });
  await closeAllInstances();
  return seconds;
}

async function runSize(client: Client, address: string, name: string, spec: { files: number; rows: number }) {
  const dir = mkdtempSync(path.join(os.tmpdir(), `netpulse-bench-${name}-`));
  const landing = path.join(dir, 'landing');
  // Written aside, then moved into the landing zone once the owner workflows run.
  const staged = path.join(dir, 'staged');
  log(`${name}: writing ${spec.files} files × ${spec.rows} rows`);
  let t = Date.now();
  const stagedFiles = await writeSyntheticLanding({ root: staged, files: spec.files, rowsPerFile: spec.rows, seed: 7 });
  const makeSeconds = (Date.now() - t) / 1000;
  const totalRows = spec.files * spec.rows;
  const landingBytes = stagedFiles.reduce((n, f) => n + statSync(f).size, 0);

  log(`${name}: limit baseline (plain DuckDB INSERT … SELECT FROM read_parquet)`);
  const baselineSeconds = await timeDuckDbInsert(path.join(dir, 'baseline.duckdb'), stagedFiles, 'SELECT *');
  // The same single INSERT with bronze's per-row lineage columns: separates the cost of the
  // lineage itself from the cost of orchestration (batches, ledger, commits, Temporal).
  const list = `[${stagedFiles.map(sqlString).join(', ')}]`;
  const lineageSeconds = await timeDuckDbInsert(path.join(dir, 'lineage.duckdb'), stagedFiles, `
    SELECT *, ${list}[file_index::BIGINT + 1] AS rastreamento_source, 'bench' AS source,
           make_timestamp([${stagedFiles.map((f) => Math.floor(statSync(f).mtimeMs)).join(', ')}][file_index::BIGINT + 1] * 1000) AS data_arquivo_ingestao,
           true AS status, NULL::JSON AS _rescued_data, 'bench:0' AS _batch_id, 1::BIGINT AS _commit_version`);

  const lakeFile = path.join(dir, 'netpulse.duckdb');
  const worker = await startWorker(address, lakeFile, landing);
  await new Promise((r) => setTimeout(r, 1500)); // worker start is not part of a pass
  const options = { maxFilesPerBatch: Number(arg('max-files', '1000')) };
  const bronzeId = `bench-bronze-${name}-${Date.now()}`;
  // A pass on the empty landing zone starts the four owner workflows (cold start, measured);
  // the timed pass is then a steady-state pass, as in continuous or scheduled operation.
  t = Date.now();
  await client.workflow.execute(bronzeAvailableNow, { taskQueue: worker.taskQueue, workflowId: `${bronzeId}-start`, args: [{ landingPath: landing, options }] });
  const coldEmptyPassMs = Date.now() - t;
  renameSync(staged, landing);
  log(`${name}: bronze availableNow pass through Temporal`);
  const activityBefore = await activitySeconds(worker);
  t = Date.now();
  const summaries = await client.workflow.execute(bronzeAvailableNow, { taskQueue: worker.taskQueue, workflowId: bronzeId, args: [{ landingPath: landing, options }] });
  const bronzeSeconds = (Date.now() - t) / 1000;
  const activity = minus(await activitySeconds(worker), activityBefore);
  const bronzeRssMiB = peakRssMiB(worker.process.pid!);
  const batches = summaries.reduce((n, s) => n + s.batches, 0);
  const rowsIn = summaries.reduce((n, s) => n + s.rows, 0);
  if (rowsIn !== totalRows) throw new Error(`bronze took ${rowsIn} rows, expected ${totalRows}`);
  const sourceIds = DEFAULT_SOURCES.map((s) => `bronze-${s.name.replace(/_/g, '-')}`);
  // Each source's pass: wall time minus the time its activities took, over all its batches.
  const orchestrationMs = summaries.reduce((n, s) => n + Date.parse(s.finishedAt) - Date.parse(s.startedAt) - (s.activityMs ?? 0), 0);
  const overheadPerBatchMs = orchestrationMs / Math.max(1, batches);

  t = Date.now();
  await client.workflow.execute(bronzeAvailableNow, { taskQueue: worker.taskQueue, workflowId: `${bronzeId}-empty`, args: [{ landingPath: landing }] });
  const emptyPassMs = Date.now() - t;

  // One source alone, on fresh files: the overhead per batch without three other sources'
  // batches competing for the two cores.
  const [oneSource, itsScenario] = [DEFAULT_SOURCES[0], DEFAULT_SCENARIOS[0]]; // sources are made from the scenarios
  await writeSyntheticLanding({ root: landing, files: Math.ceil(spec.files / 10), rowsPerFile: spec.rows, seed: 8, prefix: 'single', scenarios: [itsScenario] });
  log(`${name}: one-source pass (${oneSource.name})`);
  const [single] = await client.workflow.execute(bronzeAvailableNow, {
    taskQueue: worker.taskQueue, workflowId: `${bronzeId}-single`, args: [{ landingPath: landing, sources: [oneSource] }],
  });
  const singleSourceOverheadPerBatchMs = (Date.parse(single.finishedAt) - Date.parse(single.startedAt) - (single.activityMs ?? 0)) / Math.max(1, single.batches);
  const activityAfterEmptyPass = await activitySeconds(worker);

  log(`${name}: silver + gold pass`);
  t = Date.now();
  const pass = await client.workflow.execute(medallionPipeline, {
    taskQueue: worker.taskQueue, workflowId: `bench-sg-${name}-${Date.now()}`, args: [{ landingPath: landing, layers: ['silver', 'gold'] }],
  });
  const silverGoldSeconds = (Date.now() - t) / 1000;
  const silverGoldActivity = minus(await activitySeconds(worker), activityAfterEmptyPass);
  const rssMiB = peakRssMiB(worker.process.pid!);
  for (const id of [...sourceIds, 'silver', 'gold']) await client.workflow.getHandle(id).terminate('bench done').catch(() => undefined);
  await stopWorker(worker);
  const lakeMiB = statSync(lakeFile).size / 2 ** 20;
  rmSync(dir, { recursive: true, force: true });
  return {
    size: name, files: spec.files, rowsPerFile: spec.rows, rows: totalRows, landingMiB: +(landingBytes / 2 ** 20).toFixed(1), makeSeconds,
    baselineSeconds, baselineRowsPerSec: Math.round(totalRows / baselineSeconds),
    lineageSeconds, lineageRowsPerSec: Math.round(totalRows / lineageSeconds), ratioToLineage: +(lineageSeconds / bronzeSeconds).toFixed(2),
    bronzeSeconds, bronzeRowsPerSec: Math.round(totalRows / bronzeSeconds), ratio: +(baselineSeconds / bronzeSeconds).toFixed(2),
    batches, activitySeconds: activity, activityTotalSeconds: +sum(activity).toFixed(3), overheadPerBatchMs: Math.round(overheadPerBatchMs),
    singleSourceBatches: single.batches, singleSourceOverheadPerBatchMs: Math.round(singleSourceOverheadPerBatchMs), coldEmptyPassMs, emptyPassMs,
    silverGoldSeconds, silverGoldActivitySeconds: silverGoldActivity, silverEvents: pass?.silver?.rows ?? 0, silverRowsPerSec: Math.round((totalRows + single.rows) / silverGoldSeconds),
    workerPeakRssAfterBronzeMiB: bronzeRssMiB, workerPeakRssMiB: rssMiB, lakeMiB: +lakeMiB.toFixed(1),
  };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] : NaN;
}

async function continuousLatency(client: Client, address: string, seconds: number) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'netpulse-bench-latency-'));
  const landing = path.join(dir, 'landing');
  mkdirSync(landing, { recursive: true });
  const lakeFile = path.join(dir, 'netpulse.duckdb');
  const worker = await startWorker(address, lakeFile, landing);
  const id = `bench-continuous-${Date.now()}`;
  const handle = await client.workflow.start(medallionPipeline, {
    taskQueue: worker.taskQueue, workflowId: id,
    args: [{ landingPath: landing, continuous: true, intervalSeconds: Number(arg('interval', '0.2')), gold: { options: { refreshIntervalSeconds: 0 } } }],
  });
  log(`latency: one file a second for ${seconds} s, continuous interval ${arg('interval', '0.2')} s`);
  for (let i = 0; i < seconds; i++) {
    await writeSyntheticLanding({ root: landing, files: 1, rowsPerFile: 250, seed: i, prefix: `tick${String(i).padStart(4, '0')}`, scenarios: [{ device: 'Celular', status: 'Conectado' }] });
    await new Promise((r) => setTimeout(r, 1000));
  }
  await new Promise((r) => setTimeout(r, 5000));
  const status = await handle.query(pipelineStatusQuery);
  await handle.cancel();
  for (const wid of ['bronze-celular-conectado', 'silver', 'gold']) await client.workflow.getHandle(wid).terminate('bench done').catch(() => undefined);
  const rssMiB = peakRssMiB(worker.process.pid!);
  await stopWorker(worker);
  // landing → bronze: file mtime → its bronze commit; landing → gold: → first gold commit whose
  // input reaches the silver version that carried the file's rows.
  const rows = await withConnection(lakeFile, async (db) => (await db.runAndReadAll(`
    WITH files AS (
      SELECT f.path, f.mtime_ms, f.version AS bronze_version, c.committed_at AS bronze_at
      FROM lake.file_ledger f JOIN lake.commit_log c ON c.table_name = f.table_name AND c.version = f.version),
    silver AS (
      SELECT version, committed_at, unnest(CAST(details->'inputs' AS JSON[])) AS input FROM lake.commit_log WHERE table_name = 'silver.events'),
    silver_cover AS (
      SELECT version, (input->>'fromVersion')::BIGINT AS lo, (input->>'toVersion')::BIGINT AS hi FROM silver),
    gold AS (
      SELECT committed_at, (details->>'eventsToVersion')::BIGINT AS events_to FROM lake.commit_log WHERE table_name = 'gold.server_load_history')
    SELECT epoch_ms(bronze_at) - mtime_ms AS to_bronze_ms,
           (SELECT epoch_ms(min(g.committed_at)) FROM gold g WHERE g.events_to >= (SELECT min(s.version) FROM silver_cover s WHERE files.bronze_version > s.lo AND files.bronze_version <= s.hi)) - mtime_ms AS to_gold_ms
    FROM files`)).getRowObjectsJson() as { to_bronze_ms: string; to_gold_ms: string | null }[]);
  await closeAllInstances();
  rmSync(dir, { recursive: true, force: true });
  const bronze = rows.map((r) => Number(r.to_bronze_ms));
  const gold = rows.filter((r) => r.to_gold_ms !== null).map((r) => Number(r.to_gold_ms));
  const stats = (v: number[]) => ({ p50: percentile(v, 0.5), p95: percentile(v, 0.95), max: Math.max(...v) });
  return { files: rows.length, goldReached: gold.length, passes: status.totals.passes, toBronzeMs: stats(bronze), toGoldMs: stats(gold), workerPeakRssMiB: rssMiB };
}

function markdown(results: Awaited<ReturnType<typeof runSize>>[], latency: Awaited<ReturnType<typeof continuousLatency>> | undefined, machine: string): string {
  const lines = [
    `# netpulse benchmark — ${new Date().toISOString()}`, '', `Machine: ${machine}`, '',
    '| size | files × rows | DuckDB limit rows/s | limit + lineage rows/s | bronze pipeline rows/s | pipeline / limit | pipeline / limit + lineage | batches | Temporal overhead / batch: 4 sources / 1 source | empty pass: cold / warm | silver+gold rows/s | worker peak RSS after bronze / at end | lake file |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...results.map((r) => `| ${r.size} | ${r.files} × ${r.rowsPerFile} | ${r.baselineRowsPerSec.toLocaleString('en')} (${r.baselineSeconds.toFixed(2)} s) | ${r.lineageRowsPerSec.toLocaleString('en')} (${r.lineageSeconds.toFixed(2)} s) | ${r.bronzeRowsPerSec.toLocaleString('en')} (${r.bronzeSeconds.toFixed(2)} s) | ${r.ratio} | ${r.ratioToLineage} | ${r.batches} | ${r.overheadPerBatchMs} / ${r.singleSourceOverheadPerBatchMs} ms | ${r.coldEmptyPassMs} / ${r.emptyPassMs} ms | ${r.silverRowsPerSec.toLocaleString('en')} (${r.silverGoldSeconds.toFixed(2)} s) | ${r.workerPeakRssAfterBronzeMiB} / ${r.workerPeakRssMiB} MiB | ${r.lakeMiB} MiB |`),
  ];
  if (latency) {
    lines.push('', `Continuous latency (${latency.files} files, one a second; ${latency.passes} passes; worker peak RSS ${latency.workerPeakRssMiB} MiB):`, '',
      '| | p50 | p95 | max |', '|---|---|---|---|',
      `| landing → bronze | ${latency.toBronzeMs.p50} ms | ${latency.toBronzeMs.p95} ms | ${latency.toBronzeMs.max} ms |`,
      `| landing → gold | ${latency.toGoldMs.p50} ms | ${latency.toGoldMs.p95} ms | ${latency.toGoldMs.max} ms |`);
  }
  return lines.join('\n') + '\n';
}

async function main(): Promise<void> {
  const sizes = arg('sizes', 'small,medium').split(',').filter(Boolean);
  for (const s of sizes) if (!SIZES[s]) throw new Error(`--sizes: unknown size "${s}" (small, medium, large)`);
  const latencySeconds = Number(arg('latency-seconds', '60'));
  if (!Number.isInteger(latencySeconds) || latencySeconds < 0) throw new Error(`--latency-seconds: expected a whole number ≥ 0, got "${arg('latency-seconds', '60')}"`);
  const server = process.env.TEMPORAL_ADDRESS ? undefined : await startDevServer();
  const address = process.env.TEMPORAL_ADDRESS ?? server!.address;
  const client = new Client({ connection: await Connection.connect({ address }) });
  const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, DuckDB via @duckdb/node-api, Temporal CLI dev server (SQLite in memory)`;
  try {
    const results = [];
    for (const size of sizes) results.push(await runSize(client, address, size, SIZES[size]));
    const latency = latencySeconds > 0 ? await continuousLatency(client, address, latencySeconds) : undefined;
    const outDir = path.join(root, 'bench', 'results');
    mkdirSync(outDir, { recursive: true });
    const stamp = new Date().toISOString().slice(0, 16).replace(/[:T]/g, '-');
    const md = markdown(results, latency, machine);
    writeFileSync(path.join(outDir, `${stamp}.md`), md);
    writeFileSync(path.join(outDir, `${stamp}.json`), JSON.stringify({ machine, results, latency }, null, 2));
    console.log(md);
    log(`written to bench/results/${stamp}.md`);
  } finally {
    await client.connection.close();
    server?.process.kill('SIGTERM');
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
