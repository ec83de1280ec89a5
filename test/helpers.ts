// Shared test plumbing: a client and an in-process worker on the real dev server, temp dirs,
// DuckDB reads, and fault injection through a real activity interceptor (no mocks).
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type WorkerOptions } from '@temporalio/worker';
import { Context } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { ActivityInboundCallsInterceptor, ActivityExecuteInput, Next } from '@temporalio/worker';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { inspect } from 'node:util';
import os from 'node:os';
import path from 'node:path';
import { createNetpulseWorker, createSilverBatchWorker } from '../worker';
import type { WorkerDeps } from '../activities';
import { closeLakes, withLake, type LakeConfig } from '../lake/catalog';
import { closeAllInstances, sqlString, withConnection } from '../lake/duckdb';
import { writeSyntheticLanding } from '../bench/landing-maker';
import { bronzeWorkflowId, type Source } from '../rules/bronze';
import { DEFAULT_SCENARIOS } from '../rules/generator';
import { medallionPipeline } from '../workflows/pipeline';

/** Where tests write what a person may want to look at after a run (gitignored). */
export const TEST_OUTPUT = path.join(__dirname, '..', 'test-output');

const tempDirs: string[] = [];

/** A fresh folder in the system temp folder, deleted by closeTestResources after the test file. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `netpulse-${prefix}-`));
  tempDirs.push(dir);
  return dir;
}

/**
 * A test file's afterAll: closes the client and every DuckDB instance, then deletes the file's
 * temp folders (its worker processes, servers and clusters are stopped by then; as root, rm also
 * deletes what the postgres user owns). global-teardown.ts fails the run if anything is left.
 */
export async function closeTestResources(): Promise<void> {
  await closeTestClient();
  await closeLakes();
  await closeAllInstances();
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export function uniqueId(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * Where the workers of a test run log (their warnings and errors: activity failures, parked
 * batches, quarantined files), instead of the test output: the fault tests cause hundreds of them
 * on purpose. global-setup.ts empties it; `.ci/run` prints its end when a test fails.
 */
export const WORKER_LOG = path.join(TEST_OUTPUT, 'workers.log');

/** Warnings and errors of in-process workers and activities, into WORKER_LOG. */
const workerLogger = new DefaultLogger('WARN', ({ level, message, meta }) => {
  mkdirSync(TEST_OUTPUT, { recursive: true });
  appendFileSync(WORKER_LOG, `${new Date().toISOString()} [${level}] ${message} ${meta ? inspect(meta, { depth: 4, breakLength: Infinity }) : ''}\n`);
});

/** The Temporal runtime of this process (installed once), logging its workers' warnings to WORKER_LOG. */
export function quietTemporalRuntime(): void {
  try {
    Runtime.install({ logger: workerLogger });
  } catch {
    /* already installed by an earlier test file */
  }
}
quietTemporalRuntime();

/** An activity context for calling activities directly (no worker), logging to WORKER_LOG; DuckDB and files stay real. */
export function activityEnvironment(): MockActivityEnvironment {
  return new MockActivityEnvironment(undefined, { logger: workerLogger });
}

let client: Client | undefined;
export async function testClient(): Promise<Client> {
  client ??= new Client({ connection: await Connection.connect({ address: process.env.TEMPORAL_ADDRESS }) });
  return client;
}

export async function closeTestClient(): Promise<void> {
  await client?.connection.close();
  client = undefined;
}

/** Runs `body` while a netpulse worker polls a task queue of its own on the real server. */
export async function withWorker<T>(
  body: (ctx: { client: Client; taskQueue: string }) => Promise<T>,
  options: Partial<WorkerOptions> & { deps?: Partial<WorkerDeps> } = {},
): Promise<T> {
  const taskQueue = options.taskQueue ?? uniqueId('tq');
  const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS });
  try {
    const worker = await createNetpulseWorker({
      connection,
      taskQueue,
      workflowBundle: { codePath: process.env.NETPULSE_TEST_BUNDLE! },
      shutdownGraceTime: '2 seconds',
      ...options,
      deps: { temporalAddress: process.env.TEMPORAL_ADDRESS, ...options.deps },
    });
    // Silver shards' batches run on the queue beside it, as a worker process polls it too.
    const silverBatches = await createSilverBatchWorker({
      connection, taskQueue, shutdownGraceTime: '2 seconds', deps: { temporalAddress: process.env.TEMPORAL_ADDRESS, ...options.deps },
    });
    const c = await testClient();
    return await silverBatches.runUntil(worker.runUntil(body({ client: c, taskQueue })));
  } finally {
    await connection.close();
  }
}

/** A lake of its own for a test: a metadata schema in the test catalog, data files in `dir`. */
export function testLake(dir: string): LakeConfig {
  return { catalog: process.env.NETPULSE_CATALOG!, readerCatalog: process.env.NETPULSE_CATALOG_READER, catalogSchema: uniqueId('lake').replace(/-/g, '_'), dataPath: path.join(dir, 'lake') };
}

/** The environment that points a worker or CLI process at a test lake. */
export function lakeEnv(lake: LakeConfig): Record<string, string> {
  return {
    NETPULSE_CATALOG: lake.catalog, ...(lake.readerCatalog ? { NETPULSE_CATALOG_READER: lake.readerCatalog } : {}),
    NETPULSE_CATALOG_SCHEMA: lake.catalogSchema, NETPULSE_DATA_PATH: lake.dataPath,
  };
}

/** Rows of a DuckDB query as plain JSON objects: on a lake, or in memory (reads parquet files). */
export async function sqlRows<T = Record<string, unknown>>(sql: string, lake?: LakeConfig): Promise<T[]> {
  const read = async (db: Parameters<Parameters<typeof withConnection>[1]>[0]) => (await db.runAndReadAll(sql)).getRowObjectsJson() as T[];
  return lake ? withLake(lake, read) : withConnection(':memory:', read);
}

/**
 * Fails the first attempt of an activity type after the activity has done its work and before
 * it reports — the worst moment for idempotency.
 */
export function failFirstAttemptAfterWork(activityType: string): WorkerOptions['interceptors'] {
  class FailAfterWork implements ActivityInboundCallsInterceptor {
    async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
      const result = await next(input);
      const { info } = Context.current();
      // The attempt as the server counts it, or as the owner workflow that retries the activity itself says.
      const ownerAttempt = (input.args[0] as { attempt?: number } | undefined)?.attempt ?? 1;
      if (info.activityType === activityType && info.attempt === 1 && ownerAttempt === 1) {
        throw new Error(`injected failure after ${activityType} did its work`);
      }
      return result;
    }
  }
  return { activity: [() => ({ inbound: new FailAfterWork() })] };
}

/** The first value of `probe` that is neither undefined nor false, polled every 50 ms. */
export async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Terminates long-lived workflows a test started, so they do not outlive its worker. */
export async function terminateAll(workflowIds: string[]): Promise<void> {
  const c = await testClient();
  await Promise.all(workflowIds.map((id) => c.workflow.getHandle(id).terminate('test finished').catch(() => undefined)));
}

/** Runs the compiled CLI as a user would: a real process with its own environment and exit code. */
export function cli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(__dirname, '..', 'dist', 'client', 'cli.js'), ...args],
      { env: { ...process.env, ...env }, timeout: 120_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

/** The CLI piped into a reader that starts reading only after `pauseMs`, as `netpulse … | (sleep 1; jq)` does. */
export function cliIntoSlowReader(args: string[], env: Record<string, string>, pauseMs: number): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'dist', 'client', 'cli.js'), ...args],
      { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout!.pause();
    setTimeout(() => child.stdout!.on('data', (chunk: Buffer) => chunks.push(chunk)).resume(), pauseMs);
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(chunks).toString() }));
  });
}

/** A temp landing zone with synthetic files, a lake path, a task queue, and the CLI's environment for them. */
export async function cliLake(tag: string, files: number, rowsPerFile: number) {
  const dir = tempDir(tag);
  const landing = path.join(dir, 'landing');
  const lake = testLake(dir);
  await writeSyntheticLanding({ root: landing, files, rowsPerFile });
  const taskQueue = uniqueId(`tq-${tag}`);
  const env = { TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS!, NETPULSE_TASK_QUEUE: taskQueue, NETPULSE_LANDING_DIR: landing, ...lakeEnv(lake) };
  return { landing, lake, taskQueue, env, deps: { lake, landingDir: landing } };
}

/** A worker as production runs it: its own process, configured by environment only; its log goes to WORKER_LOG. */
export function startWorkerProcess(env: Record<string, string>, cwd?: string): ChildProcess {
  const log = openSync(WORKER_LOG, 'a');
  try {
    return spawn(process.execPath, [path.join(__dirname, '..', 'dist', 'worker.js')], {
      env: { ...process.env, NETPULSE_LOG_LEVEL: 'WARN', ...env },
      stdio: ['ignore', log, log],
      ...(cwd && { cwd }),
    });
  } finally {
    closeSync(log); // the child has its own copy
  }
}

export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await exited;
}

/** The four default sources under test-unique names, so tables and workflow ids never collide. */
export function testSources(tag: string): Source[] {
  return DEFAULT_SCENARIOS.map((s) => ({
    name: `${tag}_${s.device}_${s.status}`.toLowerCase(),
    label: `${s.device} ${s.status}`,
    path: `${s.device}/${s.status}`,
  }));
}

/** Test sources plus silver and gold under a workflow-id prefix of their own, and every owner's id. */
export function testPipeline(tag: string) {
  const prefix = `${tag}${Math.random().toString(36).slice(2, 6)}`;
  const sources = testSources(prefix);
  const workflowIdPrefix = `${prefix}-`;
  return { sources, workflowIdPrefix, ids: [...sources.map((s) => bronzeWorkflowId(s, workflowIdPrefix)), `${workflowIdPrefix}silver`, `${workflowIdPrefix}gold`] };
}

export type Row = [nome: string, ip: string, hora: string, device: string, speed: number, status: string, server: string];

/** Writes rows as a landing parquet file with the source system's schema plus Servidor. */
export async function landingFile(landing: string, folder: string, name: string, rows: Row[]): Promise<void> {
  mkdirSync(path.join(landing, folder), { recursive: true });
  const values = rows.map((r) => `(${sqlString(r[0])}, 'Rua X, 1', ${sqlString(r[1])}, TIMESTAMP ${sqlString(r[2])}, ${sqlString(r[3])}, ${r[4]}::BIGINT, ${sqlString(r[5])}, ${sqlString(r[6])})`);
  await withConnection(':memory:', (db) => db.run(`
    COPY (SELECT * FROM (VALUES ${values.join(', ')}) AS t(Nome, Endereco, Ip, Hora_Conexao, Dispositivo_de_Acesso, Velocidade_de_Conexao, Status_Conexao, Servidor))
    TO ${sqlString(path.join(landing, folder, `${name}.parquet`))} (FORMAT parquet)`));
}

const T = '2026-06-01 10:';
// Two servers, one at 111 % of its capacity after a single refresh (not sustained: no upgrade flag),
// and two event series with the same count every minute.
const OVER_CAPACITY: Record<string, Row[]> = {
  'Computador/Conectado': [
    ['Ana', '10.0.0.1', `${T}01:00`, 'Computador', 500, 'Conectado', 'srv-over'],
    ['Caio', '10.0.0.3', `${T}02:00`, 'Computador', 100, 'Conectado', 'srv-calm'],
  ],
  'Celular/Conectado': [
    ['Bia', '192.168.0.2', `${T}01:30`, 'Celular', 500, 'Conectado', 'srv-over'],
    ['Duda', '192.168.0.4', `${T}02:30`, 'Celular', 100, 'Conectado', 'srv-calm'],
  ],
};

/**
 * A lake the real pipeline filled with one pass over OVER_CAPACITY: srv-over (900 Mbps) at 111 %,
 * srv-calm (2000 Mbps) at 10 %. Its owner workflows keep running: terminate `ids` after the test.
 */
export async function overCapacityLake(tag: string) {
  const dir = tempDir(tag);
  const landing = path.join(dir, 'landing');
  const lake = testLake(dir);
  const { sources, workflowIdPrefix, ids } = testPipeline(tag);
  for (const [folder, rows] of Object.entries(OVER_CAPACITY)) await landingFile(landing, folder, folder.replace('/', '-'), rows);
  const taskQueue = uniqueId(`tq-${tag}`);
  await withWorker(({ client }) => client.workflow.execute(medallionPipeline, {
    taskQueue, workflowId: uniqueId(`pipeline-${tag}`),
    args: [{ sources, landingPath: landing, workflowIdPrefix, gold: { options: { refreshIntervalSeconds: 0, serverCapacityMbps: { 'srv-over': 900, 'srv-calm': 2000 } } } }],
  }), { taskQueue, deps: { lake, landingDir: landing } });
  return { landing, lake, sources, workflowIdPrefix, ids, taskQueue, clients: Object.values(OVER_CAPACITY).flat() };
}

/** The owners the Web UI lists as parked (search attribute NetpulseParked) with id `workflowId`, once there are any. */
export async function listedAsParked(client: Client, workflowId: string): Promise<string[]> {
  return waitFor('the parked search attribute', async () => {
    const found: string[] = [];
    for await (const e of client.workflow.list({ query: `NetpulseParked = true AND WorkflowId = "${workflowId}"` })) found.push(e.workflowId);
    return found.length > 0 ? found : undefined;
  }, 20_000);
}

/** The first process to reach a failpoint in any of `dirs` (lake/failpoints.ts): its pid and the batch it was about to commit. */
export async function firstFailpoint(dirs: string[], timeoutMs: number): Promise<{ pid: number; batchId: string }> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
    for (const dir of dirs) {
      const [hit] = readdirSync(dir).filter((f) => f.startsWith('before-commit.'));
      if (hit) return { pid: Number(hit.split('.')[1]), batchId: readFileSync(path.join(dir, hit), 'utf8') };
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no process reached the failpoint within ${timeoutMs} ms`);
}
