// The fault suite's outages: the lake's catalog stopped for longer than the retry budget, restarted
// with `pg_ctl restart -m immediate` in the middle of a pass, and the lake's disk full. Real worker
// processes and a real PostgreSQL catalog of each case's own (a fault here would otherwise hit every
// test's lake); the cases that use the default owners' ids run on a Temporal server of their own.
import { Client, Connection, type WorkflowExecutionInfo } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, Next } from '@temporalio/worker';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { writeSyntheticLanding } from '../bench/landing-maker';
import { buildDashboard } from '../client/dashboard';
import { CONTINUOUS_PIPELINE_ID } from '../client/pipeline';
import { LAKE, withLake, type LakeConfig } from '../lake/catalog';
import { startDevCatalog, type DevCatalog } from '../scripts/dev-catalog';
import { startDevServer } from '../scripts/dev-server';
import { medallionPipeline } from '../workflows/pipeline';
import type { OwnerState } from '../client/owner-state';
import { faultSuite } from './fault-report';
import {
  cli, closeTestResources, lakeEnv, sqlRows, startWorkerProcess, stopProcess, tempDir, terminateAll, testClient, testLake, testPipeline, uniqueId, waitFor, withWorker,
} from './helpers';
import { bronzeWorkflowId } from '../rules/bronze';

const { faultCase, note, write } = faultSuite('outages', 2, [
  'The cases of `test/outages.test.ts` take the lake\'s PostgreSQL catalog or its disk away from a running pipeline, each with a catalog',
  'of its own; they are checked by their assertions: what each owner showed while it retried, what parked, and that nothing was lost or',
  'written twice once the cause was gone.',
]);

afterAll(async () => {
  write();
  await closeTestResources();
});

const ROWS = 1500; // past the inlining limit (1,000): every bronze batch writes Parquet files on the lake's disk

const one = async (lake: LakeConfig, sql: string) => Number(Object.values((await sqlRows(sql, lake))[0])[0]);

/** A lake of a catalog of its own: its own PostgreSQL cluster, reader and writer roles, data files in `dir`. */
function lakeOn(catalog: DevCatalog, dir: string): LakeConfig {
  return { ...testLake(dir), catalog: catalog.connection, readerCatalog: catalog.readerConnection };
}

/** Every landing row is in bronze once, and every bronze row is an event, a duplicate or quarantined, once. */
async function expectNothingLostOrTwice(lake: LakeConfig, files: number): Promise<void> {
  expect(await one(lake, `SELECT count(*) FROM lake.file_ledger WHERE outcome = 'ingested'`)).toBe(files);
  expect(await one(lake, `SELECT count(DISTINCT path) FROM lake.file_ledger`)).toBe(files);
  const bronze = await one(lake, `SELECT sum(rows_in) FROM lake.event_log WHERE kind = 'batch' AND layer = 'bronze'`);
  expect(bronze).toBe(files * ROWS);
  const silver = await one(lake, `SELECT (SELECT count(*) FROM silver.events) + (SELECT count(*) FROM silver.quarantine)
    + (SELECT coalesce(sum(rows), 0) FROM silver.dq_counts WHERE check_name = 'duplicates')`);
  expect(silver).toBe(bronze);
  // One commit per batch id, whatever was retried.
  expect(await one(lake, `SELECT count(*) FROM (SELECT json_extract_string(commit_extra_info, '$.batchId') AS b, count(*) AS n
    FROM ${LAKE}.snapshots() WHERE commit_extra_info IS NOT NULL GROUP BY 1 HAVING n > 1)`)).toBe(0);
}

faultCase('the catalog stopped for longer than the retry budget: every owner shows its retries while they run, parks, and `retry-parked` finishes the work once', async () => {
  const dir = tempDir('catalog-down');
  const landing = path.join(dir, 'landing');
  const catalog = await startDevCatalog({ setEnv: false });
  const lake = lakeOn(catalog, dir);
  // A Temporal server of its own: the default owners (bronze-…, silver, gold) and pipeline-continuous, as `up.sh` runs them.
  const server = await startDevServer();
  const client = new Client({ connection: await Connection.connect({ address: server.address }) });
  const taskQueue = uniqueId('tq-down');
  const env = { TEMPORAL_ADDRESS: server.address, NETPULSE_TASK_QUEUE: taskQueue, NETPULSE_LANDING_DIR: landing, ...lakeEnv(lake) };
  const worker = startWorkerProcess(env);
  const state = (id: string) => client.workflow.getHandle(id).query<OwnerState & { refreshes?: number }>('checkpoint').catch(() => undefined);
  try {
    await writeSyntheticLanding({ root: landing, files: 4, rowsPerFile: ROWS, servers: 4, prefix: 'before' });
    const maxAttempts = 5; // 1 + 2 + 4 + 8 s of backoff: ~15 s of retries, then parked
    await client.workflow.start(medallionPipeline, {
      taskQueue, workflowId: CONTINUOUS_PIPELINE_ID, args: [{
        continuous: true, intervalSeconds: 2, landingPath: landing, options: { maxAttempts },
        silver: { maxAttempts }, gold: { maxAttempts, options: { refreshIntervalSeconds: 0 } },
      }],
    });
    await waitFor('the first gold refresh', async () => ((await state('gold'))?.refreshes ?? 0) >= 1 || undefined, 120_000);

    catalog.pause();
    const downAt = new Date().toISOString();
    await writeSyntheticLanding({ root: landing, files: 4, rowsPerFile: ROWS, servers: 4, prefix: 'during' });
    const owner = 'bronze-computador-conectado';
    const retrying = await waitFor('a retrying bronze owner', async () => {
      const s = await state(owner);
      return s?.retrying && s.retrying.attempt >= 3 ? s.retrying : undefined;
    }, 60_000);
    expect(retrying).toMatchObject({ step: 'ingestBronzeBatch', maxAttempts, lastError: expect.stringMatching(/^cannot reach the lake's catalog at host=127\.0\.0\.1 port=\d+ /) });
    expect(retrying.since >= downAt).toBe(true);
    expect(retrying.lastError).not.toMatch(/password=(?!\*\*\*)/);
    // Every surface says which attempt, the last error and since when.
    const list = await cli(['owners', 'list'], env);
    expect(list.stdout).toMatch(new RegExp(`${owner} .*ingestBronzeBatch bronze\\.computador_conectado:\\d+ attempt \\d/${maxAttempts} at \\S+, failing since \\S+: cannot reach the lake's catalog`));
    const status = await cli(['status'], env);
    expect(status.code).toBe(1); // the catalog is away: said, with its address, never "(no rows)"
    expect(status.stdout).toMatch(/cannot reach the lake's catalog at host=127\.0\.0\.1 port=\d+ .*: commits, quarantine and event log not read/);
    expect(status.stdout).toMatch(new RegExp(`${owner} .*unknown \\(retrying since .*ingestBronzeBatch .* attempt \\d/${maxAttempts}`));
    const continuous = await cli(['continuous', 'status'], env);
    expect(continuous.stdout).toMatch(new RegExp(`RETRYING ${owner}: ingestBronzeBatch .* attempt \\d/${maxAttempts} .* cannot reach the lake's catalog`));
    const app = await buildDashboard({ lake, temporal: async () => client });
    const page = await fetch(`${await app.listen({ host: '127.0.0.1', port: 0 })}/api/dashboard`).finally(() => app.close());
    expect(page.status).toBe(503);
    const body = await page.json() as { error: string; pipeline: { workflowId: string; retrying?: string }[] };
    expect(body.error).toMatch(/^cannot reach the lake's catalog at host=127\.0\.0\.1 port=\d+ dbname=netpulse user=netpulse_reader/);
    expect(body.pipeline.find((o) => o.workflowId === owner)?.retrying).toMatch(/attempt \d\/5 .*cannot reach the lake's catalog/);
    // The Web UI: a search attribute lists the owners retrying, and each one's page shows the retry in its current details.
    const listed: string[] = [];
    for await (const e of client.workflow.list({ query: 'NetpulseRetrying = true' })) listed.push((e as WorkflowExecutionInfo).workflowId);
    expect(listed).toContain(owner);
    const metadata = await client.workflow.getHandle(owner).query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    expect(metadata.currentDetails).toMatch(/^retrying ingestBronzeBatch bronze\.computador_conectado:\d+: attempt \d of 5 at .*failing since .*cannot reach the lake's catalog/);

    // Past the retry budget the batches park, with the reason and no "retrying" left anywhere.
    const parked = await waitFor('every bronze owner parked', async () => {
      const states = await Promise.all(['computador-conectado', 'celular-conectado', 'computador-desconectado', 'celular-desconectado'].map((s) => state(`bronze-${s}`)));
      return states.every((s) => s?.parked) ? states : undefined;
    }, 90_000);
    for (const s of parked) {
      expect(s!.parked!.reason).toMatch(/^cannot reach the lake's catalog at .*\)$/);
      expect(s!.retrying).toBeUndefined();
    }
    const retryingNow: string[] = [];
    for await (const e of client.workflow.list({ query: `NetpulseRetrying = true AND WorkflowId = "${owner}"` })) retryingNow.push(e.workflowId);
    expect(retryingNow).toEqual([]);

    catalog.resume();
    expect(await cli(['owners', 'retry-parked'], env)).toMatchObject({ code: 0, stdout: expect.stringMatching(/parked batch(es)? retried/) });
    await waitFor('the files landed during the outage through silver', async () =>
      (await one(lake, `SELECT coalesce(sum(rows_in), 0) FROM lake.event_log WHERE kind = 'batch' AND layer = 'silver'`)) === 8 * ROWS || undefined, 120_000);
    await waitFor('gold over all of silver', async () => {
      const [silver, gold] = [await state('silver') as { eventsVersion?: number }, await state('gold') as { silverSnapshot?: number }];
      return silver?.eventsVersion !== undefined && gold?.silverSnapshot === silver.eventsVersion || undefined;
    }, 60_000);
    await expectNothingLostOrTwice(lake, 8);
    note('the lake\'s catalog stopped for longer than the retry budget (maxAttempts 5), under the continuous pipeline', [
      `while it retried: \`owners list\`, \`status\` (exit 1, the catalog named; files waiting "unknown (retrying since …)"), \`continuous status\`, the dashboard's pipeline health (a 503 naming the catalog, with each owner's retry) and the Web UI (NetpulseRetrying = true; the owner's current details) each said: ${retrying.step} ${retrying.batchId}, attempt ${retrying.attempt} of ${maxAttempts}, failing since ${retrying.since}: "${retrying.lastError.replace(/passfile=\S+/, 'passfile=…')}"`,
      'after 5 attempts every bronze source parked with the reason (no retry shown any more); catalog started again, `owners retry-parked`: the 4 files landed during the outage went through bronze, silver and gold',
      'every landing file in bronze once, every bronze row an event, a duplicate or quarantined, no batch id committed twice',
    ]);
  } finally {
    await client.workflow.getHandle(CONTINUOUS_PIPELINE_ID).terminate().catch(() => undefined);
    await stopProcess(worker, 'SIGTERM');
    await client.connection.close();
    await stopProcess(server.process, 'SIGKILL');
    await catalog.stop();
  }
});

/** Counts each activity's failed attempts by (workflow, activity type), in an in-process worker: a real interceptor, no mocks. */
function failureCounter() {
  const failures = new Map<string, number>();
  class CountFailures implements ActivityInboundCallsInterceptor {
    async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
      try {
        return await next(input);
      } catch (error) {
        const { info } = Context.current();
        const key = `${info.workflowExecution?.workflowId} ${info.activityType}`;
        failures.set(key, (failures.get(key) ?? 0) + 1);
        throw error;
      }
    }
  }
  return { failures, interceptors: { activity: [() => ({ inbound: new CountFailures() })] } };
}

faultCase('PostgreSQL restarted (`pg_ctl restart -m immediate`) while gold holds its transaction: each activity loses at most one attempt', async () => {
  const dir = tempDir('catalog-restart');
  const landing = path.join(dir, 'landing');
  const catalog = await startDevCatalog({ setEnv: false });
  const lake = lakeOn(catalog, dir);
  const { sources, workflowIdPrefix, ids } = testPipeline('restart');
  const input = { sources, landingPath: landing, workflowIdPrefix, gold: { options: { refreshIntervalSeconds: 0 } } };
  const failpoints = tempDir('fp-restart');
  const { failures, interceptors } = failureCounter();
  const taskQueue = uniqueId('tq-restart');
  try {
    await withWorker(async ({ client }) => {
      await writeSyntheticLanding({ root: landing, files: 4, rowsPerFile: ROWS, servers: 4, prefix: 'first' });
      await client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId('restart-1'), args: [input] });
      // The worker's catalog connections: a pool as busy as four sources make it, all of them stale after the restart.
      await Promise.all(Array.from({ length: 8 }, () => withLake(lake, (db) => db.run('SELECT count(*) FROM lake.event_log'))));
      expect([...failures]).toEqual([]);

      await writeSyntheticLanding({ root: landing, files: 4, rowsPerFile: ROWS, servers: 4, prefix: 'second' });
      Object.assign(process.env, { NETPULSE_FAILPOINT_DIR: failpoints, NETPULSE_FAILPOINT_WAIT_MS: '3000', NETPULSE_FAILPOINT_BATCHES: '^gold:', NETPULSE_FAILPOINT_ONCE: '1' });
      const pass = client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId('restart-2'), args: [input] });
      const hit = await waitFor('gold inside its transaction', () => readdirSync(failpoints).find((f) => f.startsWith('before-commit.')));
      catalog.restartImmediately();
      const summary = (await pass)!;
      for (const key of Object.keys(process.env).filter((k) => k.startsWith('NETPULSE_FAILPOINT'))) delete process.env[key];
      expect(summary.gold).toMatchObject({ batches: 1 });
      expect(hit).toBeDefined();
      // The killed transaction cost gold one attempt; nothing else lost more than one.
      expect(failures.get(`${workflowIdPrefix}gold refreshGold`)).toBe(1);
      expect([...failures].filter(([, n]) => n > 1)).toEqual([]);

      // The next pass runs on fresh connections: no failure at all.
      const before = [...failures];
      await writeSyntheticLanding({ root: landing, files: 4, rowsPerFile: ROWS, servers: 4, prefix: 'third' });
      await client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId('restart-3'), args: [input] });
      expect([...failures]).toEqual(before);
    }, { taskQueue, deps: { lake, landingDir: landing }, interceptors });
    await expectNothingLostOrTwice(lake, 12);
    note('PostgreSQL restarted with `pg_ctl restart -m immediate` while a gold batch held its transaction (a worker whose pool held 8 connections)', [
      `failed attempts by activity: ${JSON.stringify(Object.fromEntries([...failures].map(([k, n]) => [k.replace(workflowIdPrefix, ''), n])))}: the batch whose transaction the restart killed lost one attempt; nothing lost more than one (the worker keeps its attachment: DuckDB 1.5.5's pooled catalog connections reconnect, where 1.4.4's each failed one more attempt and gold lost 6 in a row)`,
      'the next pass, on the fresh connections: no failure; every landing file in bronze once, every bronze row accounted for, no batch id committed twice',
    ]);
  } finally {
    for (const key of Object.keys(process.env).filter((k) => k.startsWith('NETPULSE_FAILPOINT'))) delete process.env[key];
    await terminateAll(ids);
    await catalog.stop();
  }
});

faultCase('the lake\'s disk full for longer than the retry budget: the batches park with the reason, and retry-parked after space is freed ingests every file once', async () => {
  if (process.getuid?.() !== 0) throw new Error('this case mounts a small tmpfs as the lake\'s disk: run the tests as root (CI does)');
  const dir = tempDir('disk-full');
  const landing = path.join(dir, 'landing');
  const disk = path.join(dir, 'disk');
  mkdirSync(disk);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'netpulse-test-disk', disk]);
  const catalog = await startDevCatalog({ setEnv: false });
  const lake = { ...lakeOn(catalog, dir), dataPath: path.join(disk, 'lake') };
  const { sources, workflowIdPrefix, ids } = testPipeline('disk');
  const input = { sources, landingPath: landing, workflowIdPrefix, options: { maxAttempts: 3 }, silver: { maxAttempts: 3 }, gold: { maxAttempts: 3 } };
  const taskQueue = uniqueId('tq-disk');
  const env = { TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS!, NETPULSE_TASK_QUEUE: taskQueue, ...lakeEnv(lake) };
  const worker = startWorkerProcess({ ...env, NETPULSE_LANDING_DIR: landing });
  const ballast = path.join(disk, 'ballast');
  try {
    const client = await testClient();
    await writeSyntheticLanding({ root: landing, files: 4, rowsPerFile: ROWS, servers: 4, prefix: 'first' });
    await client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId('disk-1'), args: [input] });
    // The rest of the disk taken: the next batches cannot write their Parquet files.
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${ballast}`, 'bs=1M'], { stdio: 'ignore' });
    } catch { /* dd stops when the disk is full: that is the point */ }
    await writeSyntheticLanding({ root: landing, files: 4, rowsPerFile: ROWS, servers: 4, prefix: 'second' });
    const full = (await client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId('disk-2'), args: [input] }))!;
    const parked = full.bronze.filter((b) => b.parked);
    expect(parked.length).toBeGreaterThan(0);
    for (const b of parked) expect(b.parked!.reason).toMatch(/No space left on device/);
    const list = await cli(['owners', 'list'], env);
    expect(list.stdout).toMatch(/No space left on device/);
    expect(list.stdout).not.toMatch(/; retrying/);

    rmSync(ballast);
    const parkedOwners = parked.map((b) => bronzeWorkflowId(sources.find((s) => s.name === b.source)!, workflowIdPrefix));
    expect(await cli(['owners', 'retry-parked', ...parkedOwners], env)).toMatchObject({ code: 0 });
    const after = (await client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId('disk-3'), args: [input] }))!;
    expect(after.bronze.every((b) => !b.parked) && !after.silver?.parked && !after.gold?.parked).toBe(true);
    await expectNothingLostOrTwice(lake, 8);
    note('the lake\'s disk full (a 24 MB tmpfs filled up) for longer than the retry budget (maxAttempts 3)', [
      `${parked.length} bronze source(s) parked after 3 attempts with the reason ("${parked[0].parked!.reason.slice(0, 120)}…"), shown by \`owners list\` without "retrying"`,
      'space freed, `owners retry-parked`, one more pass: every landing file in bronze once, every bronze row accounted for, no batch id committed twice',
    ]);
  } finally {
    await terminateAll(ids);
    await stopProcess(worker, 'SIGTERM');
    await catalog.stop();
    execFileSync('umount', [disk]);
  }
});

