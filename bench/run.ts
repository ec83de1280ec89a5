// Benchmarks: the pipeline against DuckDB's own ingest limits on the same files (a plain
// INSERT into DuckLake on the same catalog, and into a native DuckDB file), Temporal's overhead
// per batch, one worker against two, continuous landing→gold latency, worker memory. One run,
// numbers side by side, written to bench/results/<date>.{md,json}. Never a timed test.
//
//   npm run bench                       # small + medium + latency (about 5 minutes here)
//   npm run bench -- --sizes small,medium,large --latency-seconds 60
//   npm run bench -- --s3               # the lakes' data files on a local S3 server (SeaweedFS)
//   npm run bench -- --sizes medium --scale-out   # silver in 1 shard on one core, then 2 shards on two
import { linkSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { closeLakes, LAKE, withLake, type LakeConfig } from '../lake/catalog';
import { dropLake } from '../lake/admin';
import { withConnection, sqlString, closeAllInstances } from '../lake/duckdb';
import { startDevCatalog } from '../scripts/dev-catalog';
import { startDevS3, type DevS3 } from '../scripts/dev-s3';
import { bronzeWorkflowId, DEFAULT_SOURCES } from '../rules/bronze';
import { startDevServer } from '../scripts/dev-server';
import { bronzeAvailableNow } from '../workflows/bronze';
import { medallionPipeline, pipelineStatusQuery } from '../workflows/pipeline';
import { writeSyntheticLanding } from './landing-maker';
import { timeSilverLimit, type SilverLimit } from './silver-limit';
import {
  activitySeconds, cpuDuring, goldSeconds, minus, parseCores, peakRssMiB, silverBatchTenths, SIZES, tasksetPath, tenthsCell, terminateRunning, type BatchTenths, type Worker, startWorker, stopWorker, sum, writeSingleSourceLanding, writeSizeLanding, writeWarmupLanding,
} from './harness';
import { GOLD_WORKFLOW_ID, SILVER_WORKFLOW_ID, silverInputSchema } from '../rules/layers';
import { duckdbThreads } from '../lake/duckdb';
import type { SilverWorkflowInput } from '../rules/layers';
import { watchLanding } from '../client/watch';
import { config } from '../config';

/** --shuffle-hours N: event times at random over N hours in every file (out of order), not rising with the file. */
const SHUFFLE_HOURS = Number(arg('shuffle-hours', '0'));
/** --devices N: events from a population of N devices (0: a new random address for nearly every row). */
const DEVICES = Number(arg('devices', '0'));
const SHAPE = { shuffleHours: SHUFFLE_HOURS, devices: DEVICES };
/** --silver-shards N: the shards silver's lake is made with (pipeline input silver.shards); unset, the worker's default (NETPULSE_SILVER_SHARDS, else 1). */
const SILVER: { silver?: SilverWorkflowInput } = process.argv.includes('--silver-shards') ? { silver: { shards: Number(arg('silver-shards', '')) } } : {};
/** --worker-cores 0,1: the bench's workers pinned to these cores (taskset -c), in turn; unset, not pinned. */
let WORKER_CORES: number[] | undefined; // set in main
/** --s3: the lakes' data files on a SeaweedFS of the bench's own (scripts/dev-s3.ts); landing stays on local disk. */
let s3: DevS3 | undefined;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const root = config.projectRoot;
const log = (message: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);

let catalog = process.env.NETPULSE_CATALOG ?? '';
const benchLake = (dir: string, tag: string): LakeConfig => {
  const catalogSchema = `bench_${tag}_${Date.now().toString(36)}`;
  return { catalog, catalogSchema, dataPath: s3 ? `s3://${s3.bucket}/${catalogSchema}/lake` : path.join(dir, `lake-${tag}`) };
};

/** Seconds for one INSERT INTO a DuckLake table SELECT * FROM read_parquet(files), on the same catalog. */
async function timeDuckLakeInsert(lake: LakeConfig, files: string[]): Promise<number> {
  const from = `FROM read_parquet([${files.map(sqlString).join(', ')}])`;
  const seconds = await withLake(lake, async (db) => {
    await db.run(`CREATE TABLE bronze.t AS SELECT * ${from} LIMIT 0`);
    const t = Date.now(); // the INSERT and its commit only
    await db.run(`INSERT INTO bronze.t SELECT * ${from}`);
    return (Date.now() - t) / 1000;
  });
  await dropLake(lake);
  return seconds;
}

/** Data files of a lake and their bytes (what maintenance compacts). */
async function lakeFiles(lake: LakeConfig): Promise<{ files: number; mib: number }> {
  const rows = await withLake(lake, async (db) => (await db.runAndReadAll(`
    SELECT count(*) AS files, coalesce(sum(file_size_bytes), 0) AS bytes FROM __ducklake_metadata_${LAKE}.${lake.catalogSchema}.ducklake_data_file
    WHERE end_snapshot IS NULL`)).getRowObjectsJson() as { files: string; bytes: string }[]);
  return { files: Number(rows[0].files), mib: +(Number(rows[0].bytes) / 2 ** 20).toFixed(1) };
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

async function runSize(client: Client, address: string, name: string, spec: { files: number; rows: number }, workerCount = 1) {
  const tag = workerCount > 1 ? `${name}-${workerCount}w` : name;
  const dir = mkdtempSync(path.join(os.tmpdir(), `netpulse-bench-${tag}-`));
  const landing = path.join(dir, 'landing');
  // Written aside, then moved into the landing zone once the owner workflows run.
  const staged = path.join(dir, 'staged');
  log(`${tag}: writing ${spec.files} files × ${spec.rows} rows`);
  let t = Date.now();
  const stagedFiles = await writeSizeLanding(staged, spec, SHAPE);
  const makeSeconds = (Date.now() - t) / 1000;
  const totalRows = spec.files * spec.rows;
  const landingBytes = stagedFiles.reduce((n, f) => n + statSync(f).size, 0);

  log(`${tag}: limits (plain INSERT … SELECT FROM read_parquet into DuckLake, and into a native DuckDB file)`);
  const duckLakeSeconds = await timeDuckLakeInsert(benchLake(dir, 'limit'), stagedFiles);
  const baselineSeconds = await timeDuckDbInsert(path.join(dir, 'baseline.duckdb'), stagedFiles, 'SELECT *');
  // The same single INSERT with bronze's per-row lineage columns: separates the cost of the
  // lineage itself from the cost of orchestration (batches, ledger, commits, Temporal).
  const list = `[${stagedFiles.map(sqlString).join(', ')}]`;
  const lineageSeconds = await timeDuckDbInsert(path.join(dir, 'lineage.duckdb'), stagedFiles, `
    SELECT *, ${list}[file_index::BIGINT + 1] AS rastreamento_source, 'bench' AS source,
           make_timestamp([${stagedFiles.map((f) => Math.floor(statSync(f).mtimeMs)).join(', ')}][file_index::BIGINT + 1] * 1000) AS data_arquivo_ingestao,
           true AS status, NULL::JSON AS _rescued_data, 'bench:0' AS _batch_id`);
  // Silver's semantics in one DuckDB statement series over every file (bench/silver-limit.ts).
  log(`${tag}: silver limit (silver's rules, dedup and device state in plain DuckDB, all files at once)`);
  const silverLimit = await timeSilverLimit(staged, stagedFiles);

  const lake = benchLake(dir, 'pipeline');
  const placement = (i: number) => ({ core: WORKER_CORES?.[i % WORKER_CORES.length] });
  const workers = [await startWorker(address, lake, landing, undefined, placement(0))];
  for (let i = 1; i < workerCount; i++) workers.push(await startWorker(address, lake, landing, workers[0].taskQueue, placement(i)));
  const [worker] = workers;
  await new Promise((r) => setTimeout(r, 1500)); // worker start is not part of a pass
  const options = { maxFilesPerBatch: Number(arg('max-files', '1000')) };
  const bronzeId = `bench-bronze-${tag}-${Date.now()}`;
  // A warm-up pass over one small file per source starts the four owner workflows and creates
  // their tables (cold start, measured), and a silver + gold pass over those rows starts silver's
  // and gold's owners and creates their tables: the timed passes are then steady-state passes, as
  // in continuous or scheduled operation — and like the limits, whose tables exist before timing.
  const warmupRows = await writeWarmupLanding(landing);
  t = Date.now();
  await client.workflow.execute(bronzeAvailableNow, { taskQueue: worker.taskQueue, workflowId: `${bronzeId}-start`, args: [{ landingPath: landing, options }] });
  const coldEmptyPassMs = Date.now() - t;
  t = Date.now();
  const warmupSilverGold = await client.workflow.execute(medallionPipeline, {
    taskQueue: worker.taskQueue, workflowId: `bench-sg-${tag}-warmup-${Date.now()}`, args: [{ landingPath: landing, layers: ['silver', 'gold'], ...SILVER }],
  });
  const coldSilverGoldMs = Date.now() - t;
  if (warmupSilverGold?.silver?.details?.rowsIn !== warmupRows) throw new Error(`the warm-up silver pass read ${warmupSilverGold?.silver?.details?.rowsIn} rows, expected ${warmupRows}`);
  for (const file of stagedFiles) {
    const target = path.join(landing, path.relative(staged, file));
    mkdirSync(path.dirname(target), { recursive: true });
    renameSync(file, target);
  }
  log(`${tag}: bronze availableNow pass through Temporal (${workerCount} worker${workerCount > 1 ? 's' : ''})`);
  const activityBefore = await activitySeconds(worker);
  t = Date.now();
  const summaries = await client.workflow.execute(bronzeAvailableNow, { taskQueue: worker.taskQueue, workflowId: bronzeId, args: [{ landingPath: landing, options }] });
  const bronzeSeconds = (Date.now() - t) / 1000;
  const activity = minus(await activitySeconds(worker), activityBefore);
  const bronzeRssMiB = peakRssMiB(worker.process.pid!);
  const batches = summaries.reduce((n, s) => n + s.batches, 0);
  const rowsIn = summaries.reduce((n, s) => n + s.rows, 0);
  if (rowsIn !== totalRows) throw new Error(`bronze took ${rowsIn} rows, expected ${totalRows}`);
  const sourceIds = DEFAULT_SOURCES.map((s) => bronzeWorkflowId(s));
  // Each source's pass: wall time minus the time its activities took, over all its batches.
  const orchestrationMs = summaries.reduce((n, s) => n + Date.parse(s.finishedAt) - Date.parse(s.startedAt) - (s.activityMs ?? 0), 0);
  const overheadPerBatchMs = orchestrationMs / Math.max(1, batches);

  t = Date.now();
  await client.workflow.execute(bronzeAvailableNow, { taskQueue: worker.taskQueue, workflowId: `${bronzeId}-empty`, args: [{ landingPath: landing }] });
  const emptyPassMs = Date.now() - t;

  const activityBeforeSilverGold = await activitySeconds(worker);

  // Silver and gold over exactly the size's rows: the warm-up's are in already, and the
  // one-source pass's files land after it.
  log(`${tag}: silver + gold pass`);
  const silverGoldStart = new Date();
  t = Date.now();
  const pass = await client.workflow.execute(medallionPipeline, {
    taskQueue: worker.taskQueue, workflowId: `bench-sg-${tag}-${Date.now()}`, args: [{ landingPath: landing, layers: ['silver', 'gold'], ...SILVER }],
  });
  const silverGoldSeconds = (Date.now() - t) / 1000;
  const silverGoldActivity = minus(await activitySeconds(worker), activityBeforeSilverGold);
  const silverRowsIn = pass?.silver?.details?.rowsIn;
  if (silverRowsIn !== totalRows) throw new Error(`silver read ${silverRowsIn} rows, expected ${totalRows}`);
  const layerSeconds = (s?: { startedAt: string; finishedAt: string }) => (s ? (Date.parse(s.finishedAt) - Date.parse(s.startedAt)) / 1000 : NaN);
  const rssMiB = peakRssMiB(worker.process.pid!);

  // One source alone, on fresh files: the overhead per batch without three other sources'
  // batches competing for the two cores.
  const oneSource = DEFAULT_SOURCES[0]; // sources are made from the scenarios: its files are the first scenario's
  await writeSingleSourceLanding(landing, spec, SHAPE);
  log(`${tag}: one-source pass (${oneSource.name})`);
  const [single] = await client.workflow.execute(bronzeAvailableNow, {
    taskQueue: worker.taskQueue, workflowId: `${bronzeId}-single`, args: [{ landingPath: landing, sources: [oneSource] }],
  });
  const singleSourceOverheadPerBatchMs = (Date.parse(single.finishedAt) - Date.parse(single.startedAt) - (single.activityMs ?? 0)) / Math.max(1, single.batches);
  // The owners, by id (the next size reuses them), and whatever else still runs on the task queue.
  const silverIds = pass?.silverShards?.map((s) => s.source) ?? [SILVER_WORKFLOW_ID];
  for (const id of [...sourceIds, ...silverIds, GOLD_WORKFLOW_ID]) await client.workflow.getHandle(id).terminate('bench done').catch(() => undefined);
  await terminateRunning(client, worker.taskQueue);
  for (const w of workers) await stopWorker(w);
  const dataFiles = await lakeFiles(lake);
  const silverTenths = await silverBatchTenths(lake, silverGoldStart);
  await dropLake(lake);
  rmSync(dir, { recursive: true, force: true });
  return {
    size: tag, workers: workerCount, files: spec.files, rowsPerFile: spec.rows, rows: totalRows, landingMiB: +(landingBytes / 2 ** 20).toFixed(1), makeSeconds,
    duckLakeSeconds, duckLakeRowsPerSec: Math.round(totalRows / duckLakeSeconds), ratioToDuckLake: +(duckLakeSeconds / bronzeSeconds).toFixed(2),
    baselineSeconds, baselineRowsPerSec: Math.round(totalRows / baselineSeconds),
    lineageSeconds, lineageRowsPerSec: Math.round(totalRows / lineageSeconds), ratioToLineage: +(lineageSeconds / bronzeSeconds).toFixed(2),
    bronzeSeconds, bronzeRowsPerSec: Math.round(totalRows / bronzeSeconds), ratio: +(baselineSeconds / bronzeSeconds).toFixed(2),
    batches, activitySeconds: activity, activityTotalSeconds: +sum(activity).toFixed(3), overheadPerBatchMs: Math.round(overheadPerBatchMs),
    singleSourceBatches: single.batches, singleSourceOverheadPerBatchMs: Math.round(singleSourceOverheadPerBatchMs), coldEmptyPassMs, emptyPassMs,
    coldSilverGoldMs, silverGoldSeconds, silverSeconds: layerSeconds(pass?.silver), goldSeconds: layerSeconds(pass?.gold),
    silverShards: pass?.silverShards?.length ?? 1, silverGoldActivitySeconds: silverGoldActivity, silverEvents: pass?.silver?.rows ?? 0, silverRowsPerSec: Math.round(totalRows / silverGoldSeconds),
    silverLimit, silverLimitRowsPerSec: silverLimit.rowsPerSec, silverToLimit: +(totalRows / silverGoldSeconds / silverLimit.rowsPerSec).toFixed(2),
    silverToBronze: +(totalRows / silverGoldSeconds / (totalRows / bronzeSeconds)).toFixed(2),
    endToEndSeconds: +(bronzeSeconds + silverGoldSeconds).toFixed(1), silverTenths,
    workerPeakRssAfterBronzeMiB: bronzeRssMiB, workerPeakRssMiB: rssMiB, lakeDataFiles: dataFiles.files, lakeMiB: dataFiles.mib,
  };
}

/**
 * Silver's scale-out on one landing: for each shard count N (1, then 2), a fresh lake and N
 * workers on one task queue, worker k pinned to core k with `threads` DuckDB threads; a warm-up
 * (bronze, then silver + gold in N shards), bronze over the landing, then the timed silver + gold
 * pass (pipeline input `silver: { shards: N }`; owners `silver` for N = 1, `silver-<k>-of-<N>`
 * otherwise). Parallel efficiency = (N-shard rows/s) / (N × 1-shard rows/s). Each phase's owner
 * ids carry a prefix of their own, so no phase meets another's owners.
 */
async function scaleOut(client: Client, address: string, name: string, spec: { files: number; rows: number }, shardCounts: number[], cores: number[], threads: number) {
  const dir = mkdtempSync(path.join(os.tmpdir(), `netpulse-bench-scale-${name}-`));
  try {
    const staged = path.join(dir, 'staged');
    log(`${name} scale-out: writing ${spec.files} files × ${spec.rows} rows`);
    const files = await writeSizeLanding(staged, spec, SHAPE);
    // The single-machine limit: every core, the machine's memory (the phases' workers get a core each).
    log(`${name} scale-out: silver limit on the whole machine (${os.cpus().length} DuckDB threads)`);
    const silverLimit = { ...(await timeSilverLimit(staged, files, os.cpus().length)), threads: os.cpus().length };
    const phases = [];
    for (const [phase, shards] of shardCounts.entries()) {
      phases.push(await scalePhase(client, address, `${name}-${shards}shard`, { dir, staged, files, rows: spec.files * spec.rows, phase, shards, cores, threads, silverLimit }));
    }
    const one = phases.find((p) => p.shards === 1);
    for (const p of phases) if (one) p.parallelEfficiency = +(p.silverGoldRowsPerSec / (p.shards * one.silverGoldRowsPerSec)).toFixed(2);
    return { size: name, files: spec.files, rowsPerFile: spec.rows, rows: spec.files * spec.rows, silverLimit, phases };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One scale-out phase: `shards` workers, a lake and a landing of its own (the staged files, hard-linked). */
async function scalePhase(client: Client, address: string, tag: string, p: {
  dir: string; staged: string; files: string[]; rows: number; phase: number; shards: number; cores: number[]; threads: number; silverLimit: SilverLimit;
}) {
  const { shards, threads } = p;
  const landing = path.join(p.dir, `landing-${p.phase}`);
  const lake = benchLake(p.dir, `scale${p.phase}`);
  const taskQueue = `bench-scale-${p.phase}-${Date.now().toString(36)}`;
  const common = { landingPath: landing, workflowIdPrefix: `s${p.phase}-${Date.now().toString(36)}-` };
  const silver: SilverWorkflowInput = { shards };
  const run = (kind: string, workflow: typeof bronzeAvailableNow | typeof medallionPipeline, args: object) =>
    client.workflow.execute(workflow as typeof medallionPipeline, { taskQueue, workflowId: `bench-${kind}-${tag}-${Date.now()}`, args: [{ ...common, ...args }] });
  const workers: Worker[] = [];
  let measured;
  try {
    for (let k = 0; k < shards; k++) workers.push(await startWorker(address, lake, landing, taskQueue, { core: p.cores[k], threads }));
    await new Promise((r) => setTimeout(r, 1500)); // worker start is not part of a pass
    await writeWarmupLanding(landing);
    await run('bronze-warmup', bronzeAvailableNow, {});
    await run('sg-warmup', medallionPipeline, { layers: ['silver', 'gold'], silver });
    for (const file of p.files) {
      const target = path.join(landing, path.relative(p.staged, file));
      mkdirSync(path.dirname(target), { recursive: true });
      linkSync(file, target); // the same file (and modification time) in every phase's landing
    }
    log(`${tag}: bronze pass (${shards} worker${shards > 1 ? 's' : ''} on core${shards > 1 ? 's' : ''} ${p.cores.slice(0, shards).join(', ')}, ${threads} DuckDB thread${threads > 1 ? 's' : ''} each)`);
    let t = Date.now();
    await run('bronze', bronzeAvailableNow, {});
    const bronzeSeconds = (Date.now() - t) / 1000;
    log(`${tag}: silver + gold pass, silver in ${shards} shard${shards > 1 ? 's' : ''}`);
    const since = new Date();
    t = Date.now();
    const cpu = await cpuDuring(workers.map((w) => w.process.pid!), async () => {
      await run('sg', medallionPipeline, { layers: ['silver', 'gold'], silver });
    });
    measured = { bronzeSeconds, since, silverGoldSeconds: (Date.now() - t) / 1000, cpu, rss: workers.map((w) => peakRssMiB(w.process.pid!)) };
  } finally {
    await terminateRunning(client, taskQueue);
    for (const w of workers) await stopWorker(w);
  }
  const silverTenths = await silverBatchTenths(lake, measured.since);
  const gold = await goldSeconds(lake, measured.since);
  await dropLake(lake);
  // Rows the silver batches read, from the event log: the landing's for one shard. How shards count
  // rows they read but leave to another shard is theirs to say, so with several it is only reported.
  const rowsRead = Object.values(silverTenths).reduce((n, o) => n + o.rowsIn, 0);
  if (shards === 1 && rowsRead !== p.rows) throw new Error(`${tag}: silver's batches read ${rowsRead} rows, expected ${p.rows}`);
  const { bronzeSeconds, silverGoldSeconds } = measured;
  return {
    shards, workers: shards, cores: p.cores.slice(0, shards), threads, bronzeSeconds, bronzeRowsPerSec: Math.round(p.rows / bronzeSeconds),
    silverGoldSeconds, silverGoldRowsPerSec: Math.round(p.rows / silverGoldSeconds), silverToLimit: +(p.rows / silverGoldSeconds / p.silverLimit.rowsPerSec).toFixed(2),
    silverRowsRead: rowsRead, silverTenths, goldSeconds: gold, cpu: measured.cpu, workerPeakRssMiB: measured.rss, parallelEfficiency: undefined as number | undefined,
  };
}

function scaleOutMarkdown(runs: Awaited<ReturnType<typeof scaleOut>>[]): string[] {
  return runs.flatMap((s) => [
    '', `Scale-out, ${s.size} (${s.files} × ${s.rowsPerFile}): silver limit on the whole machine (${s.silverLimit.threads} DuckDB threads, 80 % of its memory) ${s.silverLimit.rowsPerSec.toLocaleString('en')} rows/s (${s.silverLimit.seconds.toFixed(2)} s)`, '',
    '| silver shards | workers (cores) | DuckDB threads each | bronze rows/s | silver+gold rows/s | of which gold | netpulse silver+gold / limit | parallel efficiency | silver batch ms, first / last tenth, per shard | CPU s during silver+gold: workers / catalog, Temporal, bench / wall × cores | worker peak RSS |',
    `|${'---|'.repeat(11)}`,
    ...s.phases.map((p) => `| ${p.shards} | ${p.workers} (${p.cores.join(', ')}) | ${p.threads} | ${p.bronzeRowsPerSec.toLocaleString('en')} (${p.bronzeSeconds.toFixed(2)} s) | ${p.silverGoldRowsPerSec.toLocaleString('en')} (${p.silverGoldSeconds.toFixed(2)} s) | ${p.goldSeconds.toFixed(2)} s | ${p.silverToLimit} | ${p.parallelEfficiency ?? '-'} | ${tenthsCell(p.silverTenths as Record<string, BatchTenths>)} | ${p.cpu.workersSeconds} / ${p.cpu.othersSeconds} / ${p.cpu.coreSeconds} | ${p.workerPeakRssMiB.join(' / ')} MiB |`),
  ]);
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] : NaN;
}

async function continuousLatency(client: Client, address: string, seconds: number) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'netpulse-bench-latency-'));
  const landing = path.join(dir, 'landing');
  mkdirSync(landing, { recursive: true });
  const lake = benchLake(dir, 'latency');
  const worker = await startWorker(address, lake, landing);
  const id = `bench-continuous-${Date.now()}`;
  const handle = await client.workflow.start(medallionPipeline, {
    taskQueue: worker.taskQueue, workflowId: id,
    args: [{ landingPath: landing, continuous: true, intervalSeconds: Number(arg('interval', '0.2')), gold: { options: { refreshIntervalSeconds: 0 } } }],
  });
  // --watch: the landing watcher triggers passes (as up.sh runs it), so the interval is only a safety net.
  const watcher = process.argv.includes('--watch') ? await watchLanding(client, landing, id) : undefined;
  log(`latency: one file a second for ${seconds} s, continuous interval ${arg('interval', '0.2')} s${watcher ? ', with the landing watcher' : ''}`);
  for (let i = 0; i < seconds; i++) {
    await writeSyntheticLanding({ root: landing, files: 1, rowsPerFile: 250, seed: i, prefix: `tick${String(i).padStart(4, '0')}`, scenarios: [{ device: 'Celular', status: 'Conectado' }] });
    await new Promise((r) => setTimeout(r, 1000));
  }
  await new Promise((r) => setTimeout(r, 5000));
  await watcher?.close();
  const status = await handle.query(pipelineStatusQuery);
  const activityMs = minus(await activitySeconds(worker), {});
  await handle.cancel();
  await terminateRunning(client, worker.taskQueue);
  const rssMiB = peakRssMiB(worker.process.pid!);
  await stopWorker(worker);
  // landing → bronze: file mtime → its bronze commit (snapshot); landing → gold: → the first gold
  // refresh whose input reaches the first silver commit that read that bronze snapshot.
  const rows = await withLake(lake, async (db) => (await db.runAndReadAll(`
    WITH commits AS (
      SELECT snapshot_id, epoch_ms(snapshot_time) AS at_ms, json_extract_string(commit_extra_info, '$.owner') AS owner,
             json_extract_string(commit_extra_info, '$.batchId') AS batch_id,
             json_extract(commit_extra_info, '$.toSnapshot')::BIGINT AS silver_to,
             json_extract(commit_extra_info, '$.silverToSnapshot')::BIGINT AS gold_to
      FROM ${LAKE}.snapshots() WHERE commit_extra_info IS NOT NULL),
    files AS (
      SELECT f.mtime_ms, c.snapshot_id AS bronze_snapshot, c.at_ms AS bronze_at FROM lake.file_ledger f JOIN commits c ON c.batch_id = f.batch_id)
    SELECT bronze_at - mtime_ms AS to_bronze_ms,
           (SELECT min(g.at_ms) FROM commits g WHERE g.owner = 'gold' AND g.gold_to >= (
              SELECT min(s.snapshot_id) FROM commits s WHERE s.owner = 'silver' AND s.silver_to >= files.bronze_snapshot)) - mtime_ms AS to_gold_ms
    FROM files`)).getRowObjectsJson() as { to_bronze_ms: string; to_gold_ms: string | null }[]);
  // Where a pass's time goes: the pipeline's pass rows (wall time) against the time spent inside
  // each activity type, per pass that moved data.
  const passes = await withLake(lake, async (db) => (await db.runAndReadAll(`
    SELECT count(*) AS passes, round(avg(duration_ms)) AS mean_ms FROM lake.event_log WHERE layer = 'pipeline' AND rows_in > 0`)).getRowObjectsJson()[0] as { passes: string; mean_ms: string });
  await dropLake(lake);
  rmSync(dir, { recursive: true, force: true });
  const perPassMs = Object.fromEntries(Object.entries(activityMs).map(([type, s]) => [type, Math.round((s * 1000) / status.totals.passes)]));
  const bronze = rows.map((r) => Number(r.to_bronze_ms));
  const gold = rows.filter((r) => r.to_gold_ms !== null).map((r) => Number(r.to_gold_ms));
  const stats = (v: number[]) => ({ p50: percentile(v, 0.5), p95: percentile(v, 0.95), max: Math.max(...v) });
  return { watcher: Boolean(watcher), interval: Number(arg('interval', '0.2')), files: rows.length, goldReached: gold.length, passes: status.totals.passes, toBronzeMs: stats(bronze), toGoldMs: stats(gold), workerPeakRssMiB: rssMiB, dataPasses: Number(passes.passes), dataPassMeanMs: Number(passes.mean_ms), activityMsPerPass: perPassMs };
}

function markdown(results: Awaited<ReturnType<typeof runSize>>[], latency: Awaited<ReturnType<typeof continuousLatency>> | undefined, machine: string, lakeAt: string,
  scale: Awaited<ReturnType<typeof scaleOut>>[] = []): string {
  const lines = [
    `# netpulse benchmark — ${new Date().toISOString()}`, '', `Machine: ${machine}`, '', `Lake data files: ${lakeAt}`, '', `Command: \`node dist/bench/run.js ${process.argv.slice(2).join(' ')}\``, '',
    '| size | workers | files × rows | DuckLake limit rows/s | DuckDB-file limit rows/s | file limit + lineage rows/s | bronze pipeline rows/s | pipeline / DuckLake limit | pipeline / file limit | pipeline / file limit + lineage | batches | Temporal overhead / batch: 4 sources / 1 source | warm-up passes (cold): bronze / silver+gold; empty pass (warm) | silver+gold rows/s (s: silver + gold; silver shards) | silver limit rows/s | netpulse silver+gold / limit | silver+gold / bronze | silver batch ms, first / last tenth | landing → gold, whole size | worker peak RSS after bronze / at end | lake data files |',
    `|${'---|'.repeat(21)}`,
    ...results.map((r) => `| ${r.size} | ${r.workers} | ${r.files} × ${r.rowsPerFile} | ${r.duckLakeRowsPerSec.toLocaleString('en')} (${r.duckLakeSeconds.toFixed(2)} s) | ${r.baselineRowsPerSec.toLocaleString('en')} (${r.baselineSeconds.toFixed(2)} s) | ${r.lineageRowsPerSec.toLocaleString('en')} (${r.lineageSeconds.toFixed(2)} s) | ${r.bronzeRowsPerSec.toLocaleString('en')} (${r.bronzeSeconds.toFixed(2)} s) | ${r.ratioToDuckLake} | ${r.ratio} | ${r.ratioToLineage} | ${r.batches} | ${r.overheadPerBatchMs} / ${r.singleSourceOverheadPerBatchMs} ms | ${r.coldEmptyPassMs} / ${r.coldSilverGoldMs}; ${r.emptyPassMs} ms | ${r.silverRowsPerSec.toLocaleString('en')} (${r.silverGoldSeconds.toFixed(2)} s: ${r.silverSeconds.toFixed(1)} + ${r.goldSeconds.toFixed(1)}; ${r.silverShards} shard${r.silverShards > 1 ? 's' : ''}) | ${r.silverLimitRowsPerSec.toLocaleString('en')} (${r.silverLimit.seconds.toFixed(2)} s) | ${r.silverToLimit} | ${r.silverToBronze} | ${tenthsCell(r.silverTenths)} | ${r.endToEndSeconds} s | ${r.workerPeakRssAfterBronzeMiB} / ${r.workerPeakRssMiB} MiB | ${r.lakeDataFiles} (${r.lakeMiB} MiB) |`),
  ];
  if (results.length === 0) lines.splice(-2, 2); // a scale-out run has no size runs
  lines.push(...scaleOutMarkdown(scale));
  if (latency) {
    lines.push('', `Continuous latency (${latency.files} files, one a second; interval ${latency.interval} s${latency.watcher ? ' with the landing watcher' : ''}; ${latency.passes} passes; worker peak RSS ${latency.workerPeakRssMiB} MiB):`, '',
      '| | p50 | p95 | max |', '|---|---|---|---|',
      `| landing → bronze | ${latency.toBronzeMs.p50} ms | ${latency.toBronzeMs.p95} ms | ${latency.toBronzeMs.max} ms |`,
      `| landing → gold | ${latency.toGoldMs.p50} ms | ${latency.toGoldMs.p95} ms | ${latency.toGoldMs.max} ms |`,
      '', `A pass that moved data: ${latency.dataPassMeanMs} ms on average (${latency.dataPasses} passes). Inside activities, per pass (all passes): ${Object.entries(latency.activityMsPerPass).map(([t, ms]) => `${t} ${ms} ms`).join(', ')}.`);
  }
  return lines.join('\n') + '\n';
}

const USAGE = `usage: node dist/bench/run.js [--sizes small,medium,large] [--two-workers medium|none]
       [--latency-seconds 60] [--max-files 1000] [--interval 0.2] [--watch] [--shuffle-hours 0] [--devices 0] [--s3]
       [--silver-shards N] [--duckdb-threads N] [--worker-cores 0,1] [--scale-out [--scale-out-shards 1,2]]
--silver-shards N: silver's lake made with N shards (default: the worker's, NETPULSE_SILVER_SHARDS, else 1).
--duckdb-threads N: every DuckDB of the run (the limits', each worker's) on N threads (NETPULSE_DUCKDB_THREADS).
--worker-cores 0,1: workers pinned to these cores in turn (taskset -c).
--scale-out: instead of the size runs, each size's landing through silver in 1 shard on one worker pinned to
core 0, then in 2 shards on two workers pinned to cores 0 and 1, each with 1 DuckDB thread (or --duckdb-threads);
parallel efficiency = 2-shard rows/s / (2 × 1-shard rows/s). --scale-out-shards: the shard counts (1 first).
Starts its own Temporal dev server and PostgreSQL catalog (or uses TEMPORAL_ADDRESS, NETPULSE_CATALOG);
writes bench/results/<date>.md and .json. Sizes: ${Object.entries(SIZES).map(([k, v]) => `${k} ${v.files} × ${v.rows}`).join(', ')}.`;

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  const sizes = arg('sizes', 'small,medium').split(',').filter(Boolean);
  for (const s of sizes) if (!SIZES[s]) throw new Error(`--sizes: unknown size "${s}" (small, medium, large)`);
  const scale = process.argv.includes('--scale-out');
  const shardCounts = arg('scale-out-shards', '1,2').split(',').filter(Boolean).map(Number);
  if (scale) {
    if (shardCounts[0] !== 1 || shardCounts.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--scale-out-shards: whole numbers ≥ 1, starting with 1, got "${arg('scale-out-shards', '1,2')}"`);
    if (Math.max(...shardCounts) > os.cpus().length) throw new Error(`--scale-out-shards: one core per shard's worker, and this machine has ${os.cpus().length}`);
    if (shardCounts.some((n) => n > 1) && !silverInputSchema.safeParse({ shards: 2 }).success) {
      throw new Error('--scale-out: this build\'s silver takes no shards (pipeline input silver.shards); until it does, run with --scale-out-shards 1');
    }
    tasksetPath(); // pinning is the point: fail now, not after the landing is written
    process.env.NETPULSE_DUCKDB_THREADS ??= '1';
  }
  if (process.argv.includes('--duckdb-threads')) process.env.NETPULSE_DUCKDB_THREADS = arg('duckdb-threads', '');
  const threads = duckdbThreads(); // validated before anything starts; workers inherit it
  if (process.argv.includes('--worker-cores')) {
    try {
      WORKER_CORES = parseCores(arg('worker-cores', ''));
    } catch (error) {
      throw new Error(`--worker-cores: ${(error as Error).message}`);
    }
    tasksetPath();
  }
  const latencySeconds = Number(arg('latency-seconds', scale ? '0' : '60'));
  if (!Number.isInteger(latencySeconds) || latencySeconds < 0) throw new Error(`--latency-seconds: expected a whole number ≥ 0, got "${arg('latency-seconds', '60')}"`);
  const server = process.env.TEMPORAL_ADDRESS ? undefined : await startDevServer();
  const devCatalog = catalog ? undefined : await startDevCatalog();
  catalog ||= devCatalog!.connection;
  const address = process.env.TEMPORAL_ADDRESS ?? server!.address;
  const client = new Client({ connection: await Connection.connect({ address }) });
  const duckdb = await withConnection(':memory:', async (db) => String((await db.runAndReadAll('SELECT version()')).getRows()[0][0]));
  const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, DuckDB ${duckdb} via @duckdb/node-api, DuckLake on a local PostgreSQL catalog, Temporal CLI dev server (SQLite in memory)`
    + `${threads ? `; DuckDB on ${threads} thread${threads > 1 ? 's' : ''} per process` : ''}${WORKER_CORES ? `; workers pinned to cores ${WORKER_CORES.join(', ')}` : ''}`;
  try {
    if (process.argv.includes('--s3')) {
      s3 = await startDevS3(mkdtempSync(path.join(os.tmpdir(), 'netpulse-bench-s3-')));
      Object.assign(process.env, s3.env); // the bench's own lake statements, and the workers it starts (they take process.env)
    }
    const lakeAt = s3 ? `S3, SeaweedFS on loopback (${s3.env.NETPULSE_S3_ENDPOINT}): s3://${s3.bucket}/<catalog schema>/lake; landing on local disk`
      : `local disk (${path.join(os.tmpdir(), 'netpulse-bench-<size>-*/lake-<tag>')}); landing on local disk`;
    const results = [];
    const scaleRuns = [];
    if (scale) {
      const cores = WORKER_CORES ?? Array.from({ length: Math.max(...shardCounts) }, (_, k) => k); // worker k on core k
      if (cores.length < Math.max(...shardCounts)) throw new Error(`--worker-cores: ${Math.max(...shardCounts)} shards need as many cores, got ${cores.join(',')}`);
      for (const size of sizes) scaleRuns.push(await scaleOut(client, address, size, SIZES[size], shardCounts, cores, threads ?? 1));
    } else for (const size of sizes) results.push(await runSize(client, address, size, SIZES[size]));
    // Several workers on one task queue and one catalog: medium again with two worker processes.
    const twoWorkers = scale ? [] : arg('two-workers', 'medium').split(',').filter((s) => s && s !== 'none');
    for (const size of twoWorkers) results.push(await runSize(client, address, size, SIZES[size], 2));
    const latency = latencySeconds > 0 ? await continuousLatency(client, address, latencySeconds) : undefined;
    const outDir = path.join(root, 'bench', 'results');
    mkdirSync(outDir, { recursive: true });
    const stamp = new Date().toISOString().slice(0, 16).replace(/[:T]/g, '-');
    const md = markdown(results, latency, machine, lakeAt, scaleRuns);
    writeFileSync(path.join(outDir, `${stamp}.md`), md);
    writeFileSync(path.join(outDir, `${stamp}.json`), JSON.stringify({ machine, duckdb, lake: s3 ? 's3' : 'local', lakeAt, duckdbThreads: threads, workerCores: WORKER_CORES, results, scaleOut: scaleRuns, latency }, null, 2));
    console.log(md);
    log(`written to bench/results/${stamp}.md`);
  } finally {
    await client.connection.close();
    await closeLakes();
    await closeAllInstances();
    await devCatalog?.stop();
    server?.process.kill('SIGTERM');
    s3?.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
