// What the bench's runs share: the sizes, a worker process of the bench's own (its Temporal
// metrics, peak memory, stop), and silver's batch times from the event log.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { withLake, type LakeConfig } from '../lake/catalog';
import { sqlString } from '../lake/duckdb';
import { freePort } from '../scripts/dev-server';
import { config } from '../config';
import { DEFAULT_SCENARIOS } from '../rules/generator';
import { writeSyntheticLanding } from './landing-maker';

export const SIZES: Record<string, { files: number; rows: number }> = {
  small: { files: 200, rows: 250 },
  medium: { files: 2000, rows: 500 },
  large: { files: 200, rows: 50_000 },
};

/** The landing's shape beyond its size: --shuffle-hours and --devices (see landing-maker.ts). */
export interface Shape { shuffleHours: number; devices: number }

/** The size's own landing files (seed 7), written under `root`. */
export const writeSizeLanding = (root: string, spec: { files: number; rows: number }, shape: Shape) =>
  writeSyntheticLanding({ root, files: spec.files, rowsPerFile: spec.rows, seed: 7, ...shape });

/** The bench's warm-up files: one small file per source (4 × 10 rows). Returns their rows. */
export async function writeWarmupLanding(root: string): Promise<number> {
  return (await writeSyntheticLanding({ root, files: 4, rowsPerFile: 10, seed: 9, prefix: 'warmup' })).length * 10;
}

/** The bench's one-source files: a tenth of the size's files, all in the first scenario's folder (the first source). */
export const writeSingleSourceLanding = (root: string, spec: { files: number; rows: number }, shape: Shape) =>
  writeSyntheticLanding({ root, files: Math.ceil(spec.files / 10), rowsPerFile: spec.rows, seed: 8, prefix: 'single', scenarios: [DEFAULT_SCENARIOS[0]], ...shape });

export interface Worker { process: ChildProcess; taskQueue: string; metricsUrl: string; core?: number; threads?: number }

/** Where a worker runs: pinned to one core (taskset -c), and its DuckDB's thread count (NETPULSE_DUCKDB_THREADS). */
export interface Placement { core?: number; threads?: number }

/** util-linux's taskset, which pins a worker to a core; a clear error where it is missing. */
export function tasksetPath(): string {
  const found = spawnSync('sh', ['-c', 'command -v taskset'], { encoding: 'utf8' });
  if (found.status !== 0 || !found.stdout.trim()) throw new Error('taskset not found (it pins workers to cores): apt-get install util-linux');
  return found.stdout.trim();
}

/** Cores to pin workers to, from a list such as "0,1": each a whole number below this machine's core count. */
export function parseCores(list: string): number[] {
  const cores = list.split(',').filter(Boolean).map((c) => {
    const core = Number(c);
    if (!/^\d+$/.test(c) || core >= os.cpus().length) throw new Error(`core "${c}": expected a whole number from 0 to ${os.cpus().length - 1} (this machine's cores)`);
    return core;
  });
  if (cores.length === 0) throw new Error('expected cores such as 0,1');
  return cores;
}

export async function startWorker(address: string, lake: LakeConfig, landing: string, taskQueue = `bench-${Date.now().toString(36)}`, placement: Placement = {}): Promise<Worker> {
  const metrics = `127.0.0.1:${await freePort()}`;
  const worker = [process.execPath, path.join(config.projectRoot, 'dist', 'worker.js')];
  const command = placement.core === undefined ? worker : [tasksetPath(), '-c', String(placement.core), ...worker]; // taskset execs the worker: same pid
  const child = spawn(command[0], command.slice(1), {
    env: {
      ...process.env, TEMPORAL_ADDRESS: address, NETPULSE_TASK_QUEUE: taskQueue, NETPULSE_LANDING_DIR: landing,
      NETPULSE_CATALOG: lake.catalog, NETPULSE_CATALOG_SCHEMA: lake.catalogSchema, NETPULSE_DATA_PATH: lake.dataPath,
      NETPULSE_LOG_LEVEL: 'WARN', NETPULSE_METRICS_ADDRESS: metrics,
      ...(placement.threads !== undefined && { NETPULSE_DUCKDB_THREADS: String(placement.threads) }),
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return { process: child, taskQueue, metricsUrl: `http://${metrics}/metrics`, ...placement };
}

/** Terminates every workflow still running on `taskQueue` (the owners a pass started), so another run can reuse their ids. */
export async function terminateRunning(client: Client, taskQueue: string): Promise<void> {
  for await (const execution of client.workflow.list({ query: `TaskQueue = ${JSON.stringify(taskQueue)} AND ExecutionStatus = "Running"` })) {
    await client.workflow.getHandle(execution.workflowId, execution.runId).terminate('bench done').catch(() => undefined);
  }
}

/**
 * Seconds spent in activity code per activity type, from the worker's own Temporal metrics
 * (activity and local activity execution latency histograms, in ms); history alone does not
 * time local activities.
 */
export async function activitySeconds(worker: Worker): Promise<Record<string, number>> {
  const text = await (await fetch(worker.metricsUrl)).text();
  const totals: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = line.match(/^temporal_(?:local_)?activity_execution_latency_sum\{([^}]*)\} ([0-9.e+]+)/);
    const type = m?.[1].match(/activity_type="([^"]+)"/)?.[1];
    if (m && type) totals[type] = (totals[type] ?? 0) + Number(m[2]) / 1000;
  }
  return totals;
}

export const sum = (values: Record<string, number>) => Object.values(values).reduce((a, b) => a + b, 0);
export const minus = (after: Record<string, number>, before: Record<string, number>) =>
  Object.fromEntries(Object.entries(after).map(([k, v]) => [k, +(v - (before[k] ?? 0)).toFixed(3)]));

/** Peak resident memory of a process (VmHWM), in MiB. */
export function peakRssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmHWM'));
  return Math.round(Number(line?.match(/\d+/)?.[0] ?? 0) / 1024);
}

export async function stopWorker(worker: Worker): Promise<void> {
  const exited = new Promise((r) => worker.process.once('exit', r));
  worker.process.kill('SIGTERM');
  await exited;
}

/** One silver owner's batches: how many, the rows they read, the mean time of the first and the last tenth, and each batch's time in order. */
export interface BatchTenths { batches: number; rowsIn: number; firstMs: number; lastMs: number; ms: number[] }

/**
 * Mean silver batch time (ms, from the event log) over the first and the last tenth of each silver
 * owner's batches: equal within noise when the per-batch cost does not grow with silver's history.
 * Owners are told apart by the batch id, `<owner>:<seq>` (`silver:12`, or with silver in shards
 * `silver-2-of-4:12`, whose event-log rows also carry the owner as their source), and ordered by seq;
 * `since`: only the batches logged from then on (a timed pass's, not a warm-up's).
 */
export async function silverBatchTenths(lake: LakeConfig, since?: Date): Promise<Record<string, BatchTenths>> {
  const rows = await withLake(lake, async (db) => (await db.runAndReadAll(`
    SELECT batch_id, duration_ms, rows_in FROM lake.event_log WHERE kind = 'batch' AND layer = 'silver'
    ${since ? `AND logged_at >= ${sqlString(since.toISOString())}::TIMESTAMPTZ` : ''}`)).getRows());
  const byOwner = new Map<string, { seq: number; ms: number; rowsIn: number }[]>();
  for (const [batchId, ms, rowsIn] of rows) {
    const id = String(batchId);
    const cut = id.lastIndexOf(':');
    const owner = id.slice(0, cut);
    byOwner.set(owner, [...(byOwner.get(owner) ?? []), { seq: Number(id.slice(cut + 1)), ms: Number(ms), rowsIn: Number(rowsIn ?? 0) }]);
  }
  const mean = (values: number[]) => Math.round(values.reduce((a, b) => a + b, 0) / Math.max(1, values.length));
  return Object.fromEntries([...byOwner].sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true })).map(([owner, batches]) => {
    const ms = batches.sort((a, b) => a.seq - b.seq).map((b) => b.ms);
    const tenth = Math.max(1, Math.floor(ms.length / 10));
    return [owner, { batches: ms.length, rowsIn: batches.reduce((n, b) => n + b.rowsIn, 0), firstMs: mean(ms.slice(0, tenth)), lastMs: mean(ms.slice(-tenth)), ms }];
  }));
}

/** Tenths per owner in a table cell: `first / last (n batches)`, with the owner's name when there are several. */
export function tenthsCell(tenths: Record<string, BatchTenths>): string {
  const owners = Object.entries(tenths);
  if (owners.length === 0) return '-';
  return owners.map(([owner, t]) => `${owners.length > 1 ? `${owner}: ` : ''}${t.firstMs} / ${t.lastMs} (${t.batches} batches)`).join('; ');
}

/** CPU seconds a process has used (user + system, /proc/<pid>/stat), its children not counted. */
export function processCpuSeconds(pid: number): number {
  // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ: 100 on Linux
}

/** CPU seconds the whole machine has been busy (every core: user, nice, system, irq, softirq, steal; /proc/stat). */
export function machineBusySeconds(): number {
  const [, user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  return (user + nice + system + irq + softirq + steal) / 100;
}

/**
 * Where the machine's CPU went while `work` ran: the given processes (the workers) and everything
 * else (the catalog's PostgreSQL, the Temporal server, the bench itself), against wall time × cores.
 */
export async function cpuDuring(pids: number[], work: () => Promise<void>): Promise<{ workersSeconds: number; othersSeconds: number; coreSeconds: number }> {
  const workers = () => pids.reduce((n, pid) => n + processCpuSeconds(pid), 0);
  const [busy0, workers0, t0] = [machineBusySeconds(), workers(), Date.now()];
  await work();
  const [busy, workersUsed] = [machineBusySeconds() - busy0, workers() - workers0];
  return {
    workersSeconds: +workersUsed.toFixed(1), othersSeconds: +Math.max(0, busy - workersUsed).toFixed(1),
    coreSeconds: +(((Date.now() - t0) / 1000) * os.cpus().length).toFixed(1),
  };
}

/** Gold's refresh time in the event log since `since` (seconds): the part of a silver + gold pass that is gold's. */
export async function goldSeconds(lake: LakeConfig, since: Date): Promise<number> {
  const [[ms]] = await withLake(lake, async (db) => (await db.runAndReadAll(`SELECT coalesce(sum(duration_ms), 0) FROM lake.event_log
    WHERE kind = 'batch' AND layer = 'gold' AND logged_at >= ${sqlString(since.toISOString())}::TIMESTAMPTZ`)).getRows());
  return Number(ms) / 1000;
}
