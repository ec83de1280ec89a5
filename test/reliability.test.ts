// The fault suite: each case runs the pipeline over the same landing files as a clean run,
// with one fault (a worker SIGKILLed inside a write transaction, a failure after a commit, the
// Temporal server killed and restarted, a poison batch, ...), and compares every table's counts
// and the gold answers with the clean run's. Real Temporal, real worker processes, a real
// PostgreSQL catalog. It writes a report of what it saw to test-output/reliability.md, or where
// NETPULSE_RELIABILITY_REPORT says: `npm run reliability-report` regenerates docs/reliability.md.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { closeLakes, LAKE, type LakeConfig } from '../lake/catalog';
import { changeFeedSql } from '../lake/changes';
import { bronzeAvailableNow } from '../workflows/bronze';
import { medallionPipeline } from '../workflows/pipeline';
import type { PipelineInput } from '../rules/pipeline';
import { bronzeWorkflowId, DEFAULT_SOURCES, type Source } from '../rules/bronze';
import { writeSyntheticLanding } from '../bench/landing-maker';
import { DEFAULT_SCENARIOS } from '../rules/generator';
import { startDevServer } from '../scripts/dev-server';
import {
  cli, closeTestResources, landingFile, lakeEnv, listedAsParked, type Row, sqlRows, startWorkerProcess, stopProcess, tempDir, terminateAll, testClient,
  testLake, testPipeline, uniqueId, waitFor, withWorker,
} from './helpers';
import { faultSuite } from './fault-report';

const AS_OF = '2026-11-29T12:00:00.000Z';
const FILES = 16;
const ROWS_PER_FILE = 500;
const landing = path.join(tempDir('reliability'), 'landing');

interface Fingerprint {
  bronzeRows: number;
  filesIngested: number;
  filesQuarantined: number;
  silverEvents: number;
  silverQuarantined: number;
  duplicates: number;
  devices: number;
  /** Every gold table: rows and a hash of its content. */
  gold: Record<string, string>;
}

const { faultCase, note, write } = faultSuite('reliability', 1, [
  `Every case of \`test/reliability.test.ts\` runs the pipeline over the same ${FILES} landing files (${FILES * ROWS_PER_FILE} rows on 4 servers, 4 sources,`,
  `2 files a bronze batch, 2,000 rows a silver batch, gold as of ${AS_OF}) with one fault, and compares every table with a clean run of`,
  'the same input; cases with an input of their own are checked by their assertions.',
]);
let clean: Fingerprint;

/** The clean run's and a faulted run's figures, one row each. */
function comparison(fault: Fingerprint, cleanRun: Fingerprint = clean): { rows: [string, string, string][]; same: boolean } {
  const show = (f: Fingerprint, k: keyof Fingerprint) => (k === 'gold' ? Object.entries(f.gold).map(([t, v]) => `${t}: ${v}`).join('<br>') : String(f[k]));
  const keys = Object.keys(cleanRun) as (keyof Fingerprint)[];
  return { rows: keys.map((k) => [k, show(cleanRun, k), show(fault, k)]), same: JSON.stringify(cleanRun) === JSON.stringify(fault) };
}

const one = async (lake: LakeConfig, sql: string) => Number(Object.values((await sqlRows(sql, lake))[0])[0]);

async function fingerprint(lake: LakeConfig, sources: Source[]): Promise<Fingerprint> {
  const goldTables = await sqlRows<{ table_name: string }>(
    `SELECT table_name FROM duckdb_tables() WHERE database_name = '${LAKE}' AND schema_name = 'gold' ORDER BY 1`, lake);
  const gold: Record<string, string> = {};
  for (const { table_name: table } of goldTables) {
    const [row] = await sqlRows<{ n: string; h: string }>(
      `SELECT count(*) AS n, md5(coalesce(string_agg(t::VARCHAR, '|' ORDER BY t::VARCHAR), '')) AS h FROM gold.${table} t`, lake);
    gold[table] = `${row.n} rows, ${row.h.slice(0, 10)}`;
  }
  const dq = Object.fromEntries((await sqlRows<{ check_name: string; n: string }>(
    'SELECT check_name, sum(rows) AS n FROM silver.dq_counts GROUP BY 1', lake)).map((r) => [r.check_name, Number(r.n)]));
  return {
    bronzeRows: (await Promise.all(sources.map((s) => one(lake, `SELECT count(*) FROM bronze.${s.name}`)))).reduce((a, b) => a + b, 0),
    filesIngested: await one(lake, `SELECT count(*) FROM lake.file_ledger WHERE outcome = 'ingested'`),
    filesQuarantined: await one(lake, `SELECT count(*) FROM lake.file_ledger WHERE outcome = 'quarantined'`),
    silverEvents: await one(lake, 'SELECT count(*) FROM silver.events'),
    silverQuarantined: await one(lake, 'SELECT count(*) FROM silver.quarantine'),
    duplicates: dq.duplicates ?? 0,
    devices: await one(lake, 'SELECT count(*) FROM silver.device_state'),
    gold,
  };
}

/** A pipeline over the shared landing files, into a lake and owners of its own. */
function scenario(tag: string, extra: Partial<PipelineInput> = {}) {
  const dir = tempDir(tag);
  const lake = testLake(dir);
  const { sources, workflowIdPrefix, ids } = testPipeline(tag.replace(/[^a-z0-9]/g, ''));
  const input: PipelineInput = {
    sources, landingPath: landing, workflowIdPrefix,
    options: { maxFilesPerBatch: 2, heartbeatTimeoutSeconds: 2 },
    silver: { maxRowsPerBatch: 2000, heartbeatTimeoutSeconds: 2 },
    gold: { asOf: AS_OF, heartbeatTimeoutSeconds: 2, options: { refreshIntervalSeconds: 0 } },
    ...extra,
  };
  const taskQueue = uniqueId(`tq-${tag}`);
  const env = (temporalAddress = process.env.TEMPORAL_ADDRESS!) => ({ TEMPORAL_ADDRESS: temporalAddress, NETPULSE_TASK_QUEUE: taskQueue, ...lakeEnv(lake) });
  return { dir, lake, sources, ids, input, taskQueue, env };
}

/** Compares a faulted run with the clean one, and keeps both for the report. */
async function expectSameAsClean(name: string, lake: LakeConfig, sources: Source[], checked: string[]): Promise<void> {
  const fault = await fingerprint(lake, sources);
  note(name, checked, comparison(fault));
  expect(fault).toEqual(clean);
}

/** The first process at a failpoint (before-commit unless said): its pid and batch. */
const failpointHit = (dir: string, at: 'before-commit' | 'after-commit' = 'before-commit') => waitFor('a failpoint', () => {
  const [hit] = readdirSync(dir).filter((f) => f.startsWith(`${at}.`));
  return hit ? { pid: Number(hit.split('.')[1]), batchId: readFileSync(path.join(dir, hit), 'utf8') } : undefined;
});

/** Failpoints of the in-process worker (its activities read this process's environment). */
const clearInProcessFailpoints = () => {
  for (const key of Object.keys(process.env).filter((k) => k.startsWith('NETPULSE_FAILPOINT'))) delete process.env[key];
};

const commitsOf = (lake: LakeConfig, batchId: string) =>
  one(lake, `SELECT count(*) FROM ${LAKE}.snapshots() WHERE json_extract_string(commit_extra_info, '$.batchId') = '${batchId}'`);

beforeAll(async () => {
  await writeSyntheticLanding({ root: landing, files: FILES, rowsPerFile: ROWS_PER_FILE, seed: 7, servers: 4 });
  const { lake, sources, ids, input, taskQueue } = scenario('clean');
  try {
    await withWorker(({ client }) => client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId('clean'), args: [input] }), { taskQueue, deps: { lake, landingDir: landing } });
  } finally {
    await terminateAll(ids);
  }
  clean = await fingerprint(lake, sources);
  expect(clean).toMatchObject({ bronzeRows: FILES * ROWS_PER_FILE, filesIngested: FILES, filesQuarantined: 0 });
  expect(clean.silverEvents + clean.silverQuarantined + clean.duplicates).toBe(FILES * ROWS_PER_FILE);
  expect(clean.gold.server_load).toMatch(/^4 rows/);
});

// Each case has a lake of its own: closed after the case, so that their catalog connections do not
// pile up (60 of PostgreSQL's 100 by the last case when they stayed open, past 100 in a full run).
afterEach(closeLakes);

afterAll(async () => {
  write();
  await closeTestResources();
});

describe.each([
  ['bronze', '^bronze\\.', 'before-commit'],
  ['silver', '^silver:', 'before-commit'],
  ['gold', '^gold:', 'before-commit'],
  ['silver', '^silver:', 'after-commit'],
] as const)('a worker SIGKILLed in a %s batch (%s)', (layer, batches, at) => {
  const where = at === 'before-commit' ? 'inside the write transaction' : 'after its COMMIT, before it reported';
  faultCase('the other worker, running alongside, takes the batch over; every table equals the clean run', async () => {
    const { dir, lake, sources, ids, input, taskQueue, env } = scenario(`kill-${layer}-${at}`);
    const failpoints = tempDir(`fp-${layer}`);
    // Two workers at once; whichever first reaches the failpoint in a matching batch is killed there.
    const failpointEnv = {
      ...env(), NETPULSE_FAILPOINT_DIR: failpoints, NETPULSE_FAILPOINT_WAIT_MS: '60000', NETPULSE_FAILPOINT_BATCHES: batches, NETPULSE_FAILPOINT_ONCE: '1',
      NETPULSE_FAILPOINT_AT: at,
    };
    const workers = [startWorkerProcess(failpointEnv), startWorkerProcess(failpointEnv)];
    try {
      const client = await testClient();
      const run = await client.workflow.start(medallionPipeline, { taskQueue, workflowId: uniqueId(`kill-${layer}`), args: [input] });
      const inside = await failpointHit(failpoints, at);
      const victim = workers.find((w) => w.pid === inside.pid)!;
      await stopProcess(victim, 'SIGKILL');
      await run.result();
      expect(await commitsOf(lake, inside.batchId)).toBe(1);
      await expectSameAsClean(`two workers; one SIGKILLed ${where} of ${layer} batch ${inside.batchId.replace(/^.*?([a-z]+[:.])/, '$1')}`, lake, sources, [
        at === 'before-commit'
          ? 'the killed batch committed exactly once, by the other worker after the heartbeat timeout (2 s)'
          : 'the batch had committed; the other worker\'s attempt found it in the owner\'s fence and answered with its result, writing nothing',
        'every table count and every gold table equal to the clean run',
      ]);
    } finally {
      await terminateAll(ids);
      for (const worker of workers) await stopProcess(worker, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

faultCase('every batch of every layer fails once after its COMMIT and before its result: the retries return the committed results', async () => {
  const { lake, sources, ids, input, taskQueue, env } = scenario('after-commit');
  const failpoints = tempDir('fp-after');
  const worker = startWorkerProcess({ ...env(), NETPULSE_FAILPOINT_DIR: failpoints, NETPULSE_FAIL_AFTER_COMMIT: '.', NETPULSE_LOG_LEVEL: 'ERROR' });
  try {
    const client = await testClient();
    const pass = (await client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId('after-commit'), args: [input] }))!;
    const failed = readdirSync(failpoints).filter((f) => f.startsWith('failed-after-commit.'));
    const batches = pass.bronze.reduce((n, b) => n + b.batches, 0) + pass.silver!.batches + pass.gold!.batches;
    expect(failed).toHaveLength(batches);
    expect(failed.some((f) => f.includes('silver')) && failed.some((f) => f.includes('gold'))).toBe(true);
    // One snapshot and one event-log row per batch, though each ran twice.
    expect(await one(lake, `SELECT count(*) FROM ${LAKE}.snapshots() WHERE commit_extra_info IS NOT NULL`)).toBe(batches);
    expect(await one(lake, `SELECT count(*) FROM lake.event_log WHERE kind = 'batch'`)).toBe(batches);
    await expectSameAsClean(`each of the ${batches} batches (bronze, silver, gold) failed once after its COMMIT`, lake, sources, [
      `${batches} injected failures, ${batches} snapshots, ${batches} batch rows in the event log`,
      'every table count and every gold table equal to the clean run',
    ]);
  } finally {
    await terminateAll(ids);
    await stopProcess(worker, 'SIGTERM');
  }
});

faultCase('the Temporal server SIGKILLed mid-pass and down for 10 s, restarted on its SQLite file: `netpulse run` waits it out and the pass completes', async () => {
  const dbDir = tempDir('temporal-db');
  const dbFile = path.join(dbDir, 'temporal.db');
  let server = await startDevServer({ dbFile });
  const port = Number(server.address.split(':').pop()); // the restart binds the same port
  // A server of its own: `run` starts the default owners (bronze-celular-conectado, silver, gold), as a user's does.
  const { lake, taskQueue } = scenario('server-restart');
  const failpoints = tempDir('fp-server');
  const env = { TEMPORAL_ADDRESS: server.address, NETPULSE_TASK_QUEUE: taskQueue, NETPULSE_LANDING_DIR: landing, ...lakeEnv(lake) };
  const workerEnv = { ...env, NETPULSE_FAILPOINT_DIR: failpoints, NETPULSE_FAILPOINT_WAIT_MS: '3000', NETPULSE_FAILPOINT_BATCHES: '^bronze\\.', NETPULSE_FAILPOINT_ONCE: '1' };
  let worker = startWorkerProcess(workerEnv);
  try {
    const run = cli(['run'], env);
    const inside = await failpointHit(failpoints);
    await stopProcess(server.process, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 10_000));
    server = await startDevServer({ port, dbFile });
    // The worker reconnects by itself; if it gave up while the server was away, start another.
    if (worker.exitCode !== null) worker = startWorkerProcess(workerEnv);
    const { code, stdout, stderr } = await run;
    expect({ code, stderr }).toMatchObject({ code: 0, stderr: expect.stringMatching(/pass running as workflow/) });
    // While the server was away `run` said so (before, it printed nothing until the server came back).
    expect(stderr).toMatch(/Temporal is unreachable at 127\.0\.0\.1:\d+ .*; waiting for it to come back/);
    expect(stdout).toMatch(/pass finished in/);
    expect(await commitsOf(lake, inside.batchId)).toBe(1);
    // `run` refreshes gold as of now: the answers that depend on the clock differ from the clean run's fixed instant.
    const byClock = ['devices_last_10_min', 'server_load', 'server_load_history', 'capacity_forecast'];
    const fault = await fingerprint(lake, DEFAULT_SOURCES);
    const timeless = (f: Fingerprint) => ({ ...f, gold: Object.fromEntries(Object.entries(f.gold).filter(([t]) => !byClock.includes(t))) });
    note('Temporal server SIGKILLed while a bronze batch was inside its transaction, down 10 s, restarted on its SQLite file; `netpulse run` waited', [
      '`netpulse run` (started before the kill) waited the outage out and exited 0 with the pass table',
      `the batch in flight (${inside.batchId}) committed exactly once; every table equal to the clean run (gold tables that depend on the refresh instant left out: ${byClock.join(', ')})`,
    ], comparison(timeless(fault), timeless(clean)));
    expect(timeless(fault)).toEqual(timeless(clean));
  } finally {
    await stopProcess(worker, 'SIGTERM');
    await stopProcess(server.process, 'SIGKILL');
  }
});

faultCase('a poison batch is parked after its retries while the other sources, silver and gold go on; retried after the fix, the lake equals the clean run', async () => {
  const { lake, sources, ids, input, taskQueue, env } = scenario('poison', {});
  const failpoints = tempDir('fp-poison');
  const poisoned = sources[1];
  writeFileSync(path.join(failpoints, 'poison'), `^bronze\\.${poisoned.name}:`);
  const parkedInput = { ...input, options: { ...input.options, maxAttempts: 2 } };
  const worker = startWorkerProcess({ ...env(), NETPULSE_FAILPOINT_DIR: failpoints });
  try {
    const client = await testClient();
    const pass = (await client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId('poison'), args: [parkedInput] }))!;
    const parked = pass.bronze.find((b) => b.source === poisoned.name)!;
    expect(parked.parked).toMatchObject({ batchId: `bronze.${poisoned.name}:0`, reason: expect.stringMatching(/injected poison/) });
    expect(pass.bronze.filter((b) => b.source !== poisoned.name).every((b) => b.files === FILES / 4 && !b.parked)).toBe(true);
    expect(pass.silver!.rows).toBeGreaterThan(0);
    // Shown: the Web UI's search attribute, the event log, `owners list` and `status`.
    const owner = bronzeWorkflowId(poisoned, input.workflowIdPrefix);
    expect(await listedAsParked(client, owner)).toEqual([owner]);
    expect(await sqlRows(`SELECT kind, batch_id FROM lake.event_log WHERE kind = 'parked'`, lake)).toEqual([{ kind: 'parked', batch_id: `bronze.${poisoned.name}:0` }]);
    const cliEnv = env();
    const list = await cli(['owners', 'list'], cliEnv);
    expect(list.stdout).toMatch(new RegExp(`${owner}.*bronze\\.${poisoned.name}:0 since .*injected poison`));
    // A second pass does not hammer the parked batch: it answers parked at once.
    const again = (await client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId('poison-again'), args: [parkedInput] }))!;
    expect(again.bronze.find((b) => b.source === poisoned.name)!.parked).toBeDefined();

    rmSync(path.join(failpoints, 'poison')); // the cause is fixed
    expect(await cli(['owners', 'retry-parked', owner], cliEnv)).toMatchObject({ code: 0, stdout: expect.stringMatching(/retrying bronze\./) });
    await waitFor('the retried batch', async () => (await one(lake, `SELECT count(*) FROM lake.file_ledger WHERE table_name = 'bronze.${poisoned.name}'`)) === FILES / 4 || undefined);
    await client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId('poison-fixed'), args: [parkedInput] });
    await expectSameAsClean('a poison batch (fails every attempt) in one bronze source, parked, then retried with `owners retry-parked`', lake, sources, [
      'parked after 2 attempts with its batch id and reason; the other three sources, silver and gold finished the pass',
      'shown by the NetpulseParked search attribute, a `parked` event-log row and `netpulse owners list`',
      'a later pass answers "parked" without retrying; after the fix and retry-parked, every table equals the clean run',
    ]);
  } finally {
    await terminateAll(ids);
    await stopProcess(worker, 'SIGTERM');
  }
});

faultCase('the same landing twice gives the same answers: an event sent twice in one file keeps the same copy in every run', async () => {
  const own = path.join(tempDir('twice'), 'landing');
  // Every event twice in one file, the copies on other plans and servers and in other row groups (DuckDB reads
  // those in parallel): which copy silver keeps decides device state and gold.
  await writeSyntheticLanding({ root: own, files: 1, rowsPerFile: 260_000, copies: 2, servers: 4, devices: 5000, shuffleHours: 2, seed: 11, scenarios: [DEFAULT_SCENARIOS[0]] });
  const runs: Fingerprint[] = [];
  const events: string[] = [];
  for (const run of ['first', 'second', 'third']) {
    const { lake, sources, ids, input, taskQueue } = scenario(`twice-${run}`, { landingPath: own, options: { maxFilesPerBatch: 4 }, silver: { maxRowsPerBatch: 250_000 } });
    try {
      await withWorker(({ client }) => client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId(`twice-${run}`), args: [input] }),
        { taskQueue, deps: { lake, landingDir: own } });
    } finally {
      await terminateAll(ids);
    }
    runs.push(await fingerprint(lake, sources.slice(0, 1))); // the one source with files
    const [{ h }] = await sqlRows<{ h: string }>(`SELECT md5(string_agg(e::VARCHAR, '|' ORDER BY e::VARCHAR)) AS h
      FROM (SELECT ip, dispositivo, status, hora_conexao, velocidade_mbps, nome, servidor FROM silver.events) e`, lake);
    events.push(h);
  }
  expect(runs[0].duplicates).toBeGreaterThanOrEqual(130_000);
  expect(events.slice(1)).toEqual([events[0], events[0]]);
  expect(runs.slice(1)).toEqual([runs[0], runs[0]]);
  note('the same landing twice', [
    `a file of 260,000 rows, every event twice with another plan speed and server, the copies 130,000 rows apart: three runs into three lakes kept the same copies`,
    `silver events (as a set), device state and every gold table equal: ${Object.entries(runs[0].gold).filter(([t]) => t === 'server_load' || t === 'bandwidth_now').map(([t, v]) => `${t} ${v}`).join(', ')}`,
  ]);
});

faultCase('a long pass continues as new between batches: no owner run holds more than batchesPerRun batches, no file list is in history', async () => {
  const { lake, sources, ids, input, taskQueue } = scenario('can', {});
  const canInput = { ...input, options: { ...input.options, maxFilesPerBatch: 1, batchesPerRun: 2 }, silver: { ...input.silver, maxRowsPerBatch: 500, batchesPerRun: 3 } };
  try {
    await withWorker(async ({ client }) => {
      const pass = (await client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId('can'), args: [canInput] }))!;
      expect(pass.bronze.map((b) => [b.batches, b.files])).toEqual(sources.map(() => [FILES / 4, FILES / 4]));
      expect(pass.silver!.batches).toBeGreaterThanOrEqual(FILES);
      for (const id of [ids[0], ids[4]]) {
        const runs: string[] = [];
        for await (const e of client.workflow.list({ query: `WorkflowId = "${id}"` })) runs.push(e.runId);
        expect(runs.length).toBeGreaterThanOrEqual(2);
        // Every run's history: at most batchesPerRun batches, and not one landing file path.
        for (const runId of runs) {
          const history = JSON.stringify(await client.workflow.getHandle(id, runId).fetchHistory());
          expect(history).not.toMatch(/\.parquet/);
        }
      }
    }, { taskQueue, deps: { lake, landingDir: landing } });
    await expectSameAsClean('passes that continue as new between batches (bronze every 2 batches, silver every 3)', lake, sources, [
      'each bronze owner took its 4 files in 4 batches over at least 2 workflow runs; silver over at least 2 runs',
      'no history of any run names a landing file (batches plan themselves inside their activity)',
      'every table equal to the clean run',
    ]);
  } finally {
    await terminateAll(ids);
  }
});

faultCase('a request with other options than the running owner is refused with the difference; landing folders stay inside their roots', async () => {
  const { lake, sources, ids, input, taskQueue } = scenario('refuse', {});
  const source = sources.slice(0, 1);
  const other = path.join(tempDir('other-landing'), 'landing');
  try {
    await withWorker(async ({ client }) => {
      await client.workflow.execute(bronzeAvailableNow, { taskQueue, workflowId: uniqueId('first'), args: [{ sources: source, landingPath: landing, workflowIdPrefix: input.workflowIdPrefix }] });
      const refused = client.workflow.execute(bronzeAvailableNow, { taskQueue, workflowId: uniqueId('other'), args: [{ sources: source, landingPath: other, workflowIdPrefix: input.workflowIdPrefix }] });
      await expect(refused).rejects.toMatchObject({ cause: { type: 'OwnerOptionsDiffer', message: expect.stringMatching(/landingPath: ".*reliability.*" → ".*other-landing.*"/) } });
      // Outside the landing roots: the owner parks at once (not retried), naming the roots.
      const outside = (await client.workflow.execute(bronzeAvailableNow, {
        taskQueue, workflowId: uniqueId('outside'), args: [{ sources: source, landingPath: '/proc', workflowIdPrefix: `${input.workflowIdPrefix}x` }],
      }))!;
      expect(outside[0].parked).toMatchObject({ errorType: 'InvalidInput', reason: expect.stringMatching(/outside the landing roots/) });
      // A source folder that cannot be listed (a file where the folder should be): retried
      // (here twice), then parked with the reason. A landing folder that does not exist fails the run.
      const notListable = path.join(tempDir('not-listable'), 'landing');
      mkdirSync(notListable, { recursive: true });
      writeFileSync(path.join(notListable, source[0].path.split('/')[0]), 'not a folder');
      const [unlistable] = (await client.workflow.execute(bronzeAvailableNow, {
        taskQueue, workflowId: uniqueId('unlistable'), args: [{ sources: source, landingPath: notListable, workflowIdPrefix: `${input.workflowIdPrefix}z`, options: { maxAttempts: 2 } }],
      }))!;
      expect(unlistable.parked).toMatchObject({ batchId: expect.stringMatching(/^bronze\./), reason: expect.stringMatching(/ENOTDIR/) });
      const missing = client.workflow.execute(bronzeAvailableNow, {
        taskQueue, workflowId: uniqueId('missing'), args: [{ sources: source, landingPath: path.join(other, 'missing'), workflowIdPrefix: `${input.workflowIdPrefix}y` }],
      });
      await expect(missing).rejects.toMatchObject({ cause: { type: 'LandingMissing', message: expect.stringMatching(/missing does not exist/) } });
      await terminateAll(['x', 'y', 'z'].map((suffix) => bronzeWorkflowId(source[0], `${input.workflowIdPrefix}${suffix}`)));
    }, { taskQueue, deps: { lake, landingDir: landing } });
    await expect(cli(['generator', 'start', '--landing', '/etc/netpulse'], {})).resolves.toMatchObject({ code: 2, stderr: expect.stringMatching(/outside the landing roots/) });
    await expect(cli(['run', '--landing', '/proc'], {})).resolves.toMatchObject({ code: 2, stderr: expect.stringMatching(/outside the landing roots/) });
    note('options that differ from the running owner; landing folders outside their roots', [
      'a run asking a running bronze owner for another landingPath fails with OwnerOptionsDiffer, naming landingPath old → new (the owner keeps its files)',
      'an owner whose landing folder is outside NETPULSE_LANDING_ROOTS parks at once (InvalidInput, not retried); `run` and `generator start` with such a --landing exit 2',
      'a source folder that cannot be listed (ENOTDIR) is retried and then parked with the reason; a landing folder that does not exist fails a one-shot run (LandingMissing) and shows in a continuous pipeline\'s status, never listed as empty',
    ]);
  } finally {
    await terminateAll(ids);
  }
});

faultCase('a file landed during a pass is left to the next pass (availableNow cutoff); the next pass takes exactly it', async () => {
  const { lake, sources, ids, input, taskQueue } = scenario('dropped', {});
  const failpoints = tempDir('fp-dropped');
  Object.assign(process.env, { NETPULSE_FAILPOINT_DIR: failpoints, NETPULSE_FAILPOINT_WAIT_MS: '1500', NETPULSE_FAILPOINT_BATCHES: ':0$', NETPULSE_FAILPOINT_ONCE: '1' });
  try {
    await withWorker(async ({ client }) => {
      const run = await client.workflow.start(medallionPipeline, { taskQueue, workflowId: uniqueId('dropped'), args: [input] });
      const inside = await failpointHit(failpoints);
      const held = sources.find((s) => inside.batchId === `bronze.${s.name}:0`)!;
      const [late] = await writeSyntheticLanding({ root: landing, files: 1, rowsPerFile: 7, prefix: `late-${held.name}`, scenarios: [{ device: held.path.split('/')[0] as never, status: held.path.split('/')[1] as never }] });
      const pass = (await run.result())!;
      expect(pass.bronze.find((b) => b.source === held.name)).toMatchObject({ files: FILES / 4, lag: 0 });
      clearInProcessFailpoints();
      const next = (await client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId('dropped-next'), args: [input] }))!;
      expect(next.bronze.map((b) => b.files)).toEqual(sources.map((s) => (s === held ? 1 : 0)));
      expect(await one(lake, `SELECT count(*) FROM lake.file_ledger WHERE path = '${late}'`)).toBe(1);
      rmSync(late);
      note('a file landed during a pass', [
        `written while ${inside.batchId} was inside its transaction; that source's pass took its ${FILES / 4} files in ${FILES / 8} batches and left the new one (later batches plan against the pass's cutoff)`,
        'the next pass took exactly that file, once',
      ]);
    }, { taskQueue, deps: { lake, landingDir: landing } });
  } finally {
    clearInProcessFailpoints();
    await terminateAll(ids);
  }
});

faultCase('duplicates across silver batches are dropped, an older event arriving after a newer one leaves device state alone, an event past the watermark is late', async () => {
  const dir = tempDir('order');
  const own = path.join(dir, 'landing');
  const lake = testLake(dir);
  const { sources, ids, workflowIdPrefix } = testPipeline('order');
  const input = {
    sources, landingPath: own, workflowIdPrefix, silver: { options: { watermarkMinutes: 30 } }, gold: { asOf: AS_OF, options: { refreshIntervalSeconds: 0 } },
  };
  const ana = (hora: string, status: string): [string, string, string, string, number, string, string] => ['Ana', '10.0.0.1', hora, 'Computador', 100, status, 'srv-a'];
  const taskQueue = uniqueId('tq-order');
  try {
    await withWorker(async ({ client }) => {
      const pass = (n: string) => client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId(n), args: [input] });
      await landingFile(own, 'Computador/Conectado', 'first', [ana('2026-11-29 11:50:00', 'Conectado'), ['Bia', '10.0.0.2', '2026-11-29 11:51:00', 'Computador', 50, 'Conectado', 'srv-a']]);
      await pass('order-1');
      // The same two events again, in a file of another name: a later silver batch.
      await landingFile(own, 'Computador/Conectado', 'redelivered', [ana('2026-11-29 11:50:00', 'Conectado'), ['Bia', '10.0.0.2', '2026-11-29 11:51:00', 'Computador', 50, 'Conectado', 'srv-a']]);
      const second = (await pass('order-2'))!;
      expect(second.silver).toMatchObject({ batches: 1, rows: 0, details: expect.objectContaining({ duplicates: 2 }) });
      // Ana disconnected at 11:40, before the 11:50 connection silver already has.
      await landingFile(own, 'Computador/Desconectado', 'older', [ana('2026-11-29 11:40:00', 'Desconectado')]);
      const third = (await pass('order-3'))!;
      expect(third.silver).toMatchObject({ rows: 1 });
      // 11:20 is older than the newest accepted event (11:51) minus the 30-minute watermark: late.
      await landingFile(own, 'Computador/Desconectado', 'late', [ana('2026-11-29 11:20:00', 'Desconectado'), ana('2026-11-29 11:21:00', 'Conectado')]);
      const fourth = (await pass('order-4'))!;
      expect(fourth.silver).toMatchObject({ rows: 1, quarantined: 1 });
    }, { taskQueue, deps: { lake, landingDir: own } });
    expect(await sqlRows(`SELECT nome, status, last_event_at::VARCHAR AS at FROM silver.device_state ORDER BY nome`, lake)).toEqual([
      { nome: 'Ana', status: 'Conectado', at: '2026-11-29 11:50:00' },
      { nome: 'Bia', status: 'Conectado', at: '2026-11-29 11:51:00' },
    ]);
    expect(await one(lake, 'SELECT count(*) FROM silver.events')).toBe(4);
    expect(await sqlRows(`SELECT rule, json_extract_string(raw, '$.Hora_Conexao') AS at FROM silver.quarantine`, lake))
      .toEqual([{ rule: 'late_event', at: '2026-11-29 11:20:00' }]);
    expect(await one(lake, `SELECT connected FROM gold.connections_now WHERE dispositivo = 'Total'`)).toBe(2);
    note('duplicates across silver batches; an older event after a newer one', [
      'two events delivered again in a later file: the later silver batch wrote 0 events and counted 2 duplicates',
      "a disconnection at 11:40 arriving after the 11:50 connection: kept as an event, device state still connected at 11:50, gold's connected count unchanged (2)",
      'with a 30-minute watermark after the 11:51 event: an event at 11:20 is quarantined as late_event, one at 11:21 accepted (inside the watermark)',
    ]);
  } finally {
    await terminateAll(ids);
  }
});

faultCase('needs_upgrade holds only after three over-threshold snapshots in the window, clears when load drops; report --as-of <time> answers as then', async () => {
  const dir = tempDir('upgrade');
  const own = path.join(dir, 'landing');
  const lake = testLake(dir);
  const { sources, ids, workflowIdPrefix } = testPipeline('upgrade');
  // srv-a: 300 Mbps in use on a 100 Mbps server (300 %); srv-b: 50 Mbps on the default 5,000.
  const input = { sources, landingPath: own, workflowIdPrefix, gold: { options: { refreshIntervalSeconds: 0, serverCapacityMbps: { 'srv-a': 100 } } } };
  const device = (n: number, server: string, speed: number, status: string): Row =>
    [`Cliente ${n}`, `10.0.1.${n}`, `2026-11-29 11:${status === 'Conectado' ? 0 : 5}${n}:00`, 'Computador', speed, status, server];
  const taskQueue = uniqueId('tq-upgrade');
  const flags: { srvA: boolean; srvB: boolean; at: string }[] = [];
  let lastRefresh = { from: 0, to: 0 };
  try {
    await withWorker(async ({ client }) => {
      await landingFile(own, 'Computador/Conectado', 'load', [device(1, 'srv-a', 200, 'Conectado'), device(2, 'srv-a', 100, 'Conectado'), device(3, 'srv-b', 50, 'Conectado')]);
      for (let refresh = 1; refresh <= 4; refresh++) {
        if (refresh === 4) await landingFile(own, 'Computador/Desconectado', 'calm', [device(1, 'srv-a', 200, 'Desconectado'), device(2, 'srv-a', 100, 'Desconectado')]);
        const pass = (await client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId(`upgrade-${refresh}`), args: [input] }))!;
        lastRefresh = { from: pass.gold!.fromVersion, to: pass.gold!.toVersion };
        const rows = await sqlRows<{ servidor: string; needs_upgrade: boolean }>('SELECT servidor, needs_upgrade FROM gold.server_load ORDER BY 1', lake);
        flags.push({ srvA: rows[0].needs_upgrade, srvB: rows[1].needs_upgrade, at: new Date().toISOString() });
        await new Promise((r) => setTimeout(r, 1100)); // distinct refresh instants and commit times
      }
    }, { taskQueue, deps: { lake, landingDir: own } });
    expect(flags.map((f) => [f.srvA, f.srvB])).toEqual([[false, false], [false, false], [true, false], [false, false]]);
    // Incremental gold: the last refresh wrote one load snapshot (2 servers) and only the minutes its 2 new events fell in.
    const changes = (table: string) => sqlRows<{ change_type: string; n: string }>(
      `SELECT change_type, count(*) AS n FROM (${changeFeedSql(table, lastRefresh.from, lastRefresh.to)}) GROUP BY 1 ORDER BY 1`, lake);
    expect(await changes('gold.events_per_minute')).toEqual([{ change_type: 'insert', n: '2' }]);
    expect(await changes('gold.server_load_history')).toEqual([{ change_type: 'insert', n: '2' }]);
    expect(await one(lake, 'SELECT count(*) FROM gold.server_load_history')).toBe(8);
    // The report as of a time between refresh 3 and 4 answers as refresh 3 did.
    const report = await cli(['report', '--json', '--as-of', flags[2].at], lakeEnv(lake));
    expect(report.code).toBe(0);
    const servers = (JSON.parse(report.stdout) as { tables: Record<string, { servidor: string; needs_upgrade: boolean }[]> }).tables.server_load;
    expect(servers.map((r) => [r.servidor, r.needs_upgrade])).toEqual([['srv-a', true], ['srv-b', false]]);
    const before = await cli(['report', '--json', '--as-of', '2000-01-01T00:00:00Z'], lakeEnv(lake));
    expect(before).toMatchObject({ code: 1, stderr: expect.stringMatching(/no gold refresh at or before/) }); // nothing there: not bad input
    note('needs_upgrade over four refreshes, and report --as-of <time>', [
      `srv-a at 300 % of its capacity, srv-b at 1 %: needs_upgrade per refresh ${JSON.stringify(flags.map((f) => [f.srvA, f.srvB]))} (set from the third over-threshold snapshot, cleared when srv-a's devices disconnected)`,
      'report --as-of a time between refresh 3 and 4 answers as refresh 3 (srv-a flagged); a time before any refresh exits 1 with the reason (nothing there, not bad input)',
      'incremental gold: the fourth refresh inserted one load snapshot (2 rows) and 2 per-minute rows (the minutes of its 2 new events), nothing else',
    ]);
  } finally {
    await terminateAll(ids);
  }
});

faultCase('a scheduled pass due while the previous one still runs is skipped (overlap policy), never run twice at once', async () => {
  const { lake, taskQueue } = scenario('overlap', {});
  const failpoints = tempDir('fp-overlap');
  const id = uniqueId('overlap');
  const env = { TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS!, NETPULSE_TASK_QUEUE: taskQueue, NETPULSE_LANDING_DIR: landing, ...lakeEnv(lake) };
  Object.assign(process.env, { NETPULSE_FAILPOINT_DIR: failpoints, NETPULSE_FAILPOINT_WAIT_MS: '14000', NETPULSE_FAILPOINT_ONCE: '1' });
  const client = await testClient();
  try {
    await withWorker(async () => {
      // 5 s: the shortest interval schedule create accepts
      expect(await cli(['schedule', 'create', id, '--every', '5s'], env)).toMatchObject({ code: 0 });
      await failpointHit(failpoints); // the first scheduled pass is inside a batch for 14 s
      const described = await waitFor('skipped actions', async () => {
        const d = await client.schedule.getHandle(id).describe();
        return d.info.numActionsSkippedOverlap >= 2 ? d : undefined;
      }, 30_000);
      expect(described.info.runningActions).toHaveLength(1);
      expect(described.policies.overlap).toBe('SKIP');
      note('schedule overlap policy', [
        `a scheduled pass every 5 s while the first pass was held 14 s inside a batch: ${described.info.numActionsSkippedOverlap} skipped, ${described.info.runningActions.length} running at once`,
      ]);
    }, { taskQueue, deps: { lake, landingDir: landing } });
  } finally {
    clearInProcessFailpoints();
    await client.schedule.getHandle(id).delete().catch(() => undefined);
    await terminateAll([`scheduled-${id}`, ...DEFAULT_SOURCES.map((s) => bronzeWorkflowId(s)), 'silver', 'gold']);
  }
});
