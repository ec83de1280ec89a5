// Silver sharded by device: the same landing through one shard and through four gives the same
// answers (events, quarantine, duplicates, device state, every gold table), each shard holding
// only its devices. Real Temporal server, PostgreSQL catalog and DuckDB.
import path from 'node:path';
import { LAKE } from '../lake/catalog';
import { GOLD_TABLES } from '../rules/gold';
import { silverShards, silverShardTables } from '../rules/shards';
import { medallionPipeline } from '../workflows/pipeline';
import { rmSync, writeFileSync } from 'node:fs';
import {
  cli, cliLake, closeTestResources, firstFailpoint, landingFile, listedAsParked, type Row, sqlRows, startWorkerProcess, stopProcess, tempDir, terminateAll,
  testClient, testLake, testSources, uniqueId, waitFor, withWorker,
} from './helpers';
import { buildDashboard } from '../client/dashboard';
import { ownerIds } from '../client/owner-state';
import { writeSyntheticLanding } from '../bench/landing-maker';
import { DEFAULT_SOURCES, type Source } from '../rules/bronze';
import type { LakeConfig } from '../lake/catalog';

afterAll(closeTestResources);

const DAY = '2026-04-01';
/** 08:00 plus `minutes` on the fixture's day (or `days` before it). */
const at = (minutes: number, days = 0) => {
  const t = new Date(Date.parse(`${DAY}T08:00:00Z`) + minutes * 60_000 - days * 86_400_000);
  return t.toISOString().replace('T', ' ').slice(0, 19);
};
const ip = (i: number) => `10.1.${i % 3}.${i + 1}`;
const row = (i: number, device: string, status: string, hora: string): Row =>
  [`Cliente ${i}`, ip(i), hora, device, [10, 50, 100, 500, 1000][i % 5], status, `srv-${i % 4}`];
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);

/** Files of the first pass: connects, later disconnects, disconnects older than the connect, bad rows, a repeat inside a file. */
const FIRST: [folder: string, name: string, rows: Row[]][] = [
  ['Computador/Conectado', 'a1', [...range(0, 24).map((i) => row(i, 'Computador', 'Conectado', at(10 + i))), row(3, 'Computador', 'Conectado', at(13))]],
  ['Celular/Conectado', 'a1', range(24, 48).map((i) => row(i, 'Celular', 'Conectado', at(20 + i)))],
  ['Computador/Desconectado', 'a2', range(0, 12).map((i) => row(i, 'Computador', 'Desconectado', at(60 + i)))],
  ['Celular/Desconectado', 'a2', range(24, 36).map((i) => row(i, 'Celular', 'Desconectado', at(5)))], // older than their connects
  ['Computador/Conectado', 'a3', [
    ['Duda', '8.8.8.8', at(30), 'Computador', 100, 'Conectado', 'srv-1'], // public address
    ['Edu', ip(4), at(31), 'Computador', 300, 'Conectado', 'srv-1'], // speed not offered
    ['  ', ip(5), at(32), 'Computador', 50, 'Conectado', 'srv-1'], // no name
    ['Ivo', ip(6), '2099-01-01 00:00:00', 'Computador', 50, 'Conectado', 'srv-1'], // future
    ['Jo', ip(7), at(33), 'Tablet', 50, 'Conectado', 'srv-1'], // unknown device
  ]],
];

/** The second pass: a whole file delivered again, new and older events, events far behind the watermark. */
const SECOND: [folder: string, name: string, rows: Row[]][] = [
  ['Computador/Conectado', 'b1', FIRST[0][2]],
  ['Celular/Desconectado', 'b2', [...range(36, 48).map((i) => row(i, 'Celular', 'Desconectado', at(90 + i))),
    ...range(36, 40).map((i) => row(i, 'Celular', 'Desconectado', at(15)))]],
  ['Computador/Desconectado', 'b3', range(12, 16).map((i) => row(i, 'Computador', 'Desconectado', at(0, 3)))], // late: 3 days old
  ['Celular/Conectado', 'b4', [['Mo', ip(30), at(70), 'Celular', 50, 'desligado', 'srv-2'], ...range(40, 44).map((i) => row(i, 'Celular', 'Conectado', at(95)))]],
];

const writeFiles = (landing: string, files: typeof FIRST) => Promise.all(files.map(([folder, name, rows]) => landingFile(landing, folder, name, rows)));

/** Everything silver and gold answer, in a form two lakes can be compared by. */
async function answers(lake: LakeConfig) {
  const q = (sql: string) => sqlRows(sql, lake);
  const gold = Object.fromEntries(await Promise.all(GOLD_TABLES.map(async (t) => [t, await q(`SELECT * FROM gold.${t} ORDER BY ALL`)])));
  return {
    events: await q(`SELECT * EXCLUDE (_batch_id, bronze_snapshot) FROM silver.events ORDER BY ALL`),
    quarantineByRule: await q(`SELECT rule, failed_rules, source_file, raw->>'Nome' AS nome, count(*) AS n FROM silver.quarantine GROUP BY ALL ORDER BY ALL`),
    dq: await q(`SELECT check_name, sum(rows) AS rows FROM silver.dq_counts GROUP BY ALL ORDER BY ALL`),
    deviceState: await q('SELECT * FROM silver.device_state ORDER BY ALL'),
    gold,
  };
}

test('one shard and four give the same silver and gold; each shard holds only its own devices', async () => {
  const dir = tempDir('shards');
  const landing = path.join(dir, 'landing');
  const lakes = { one: testLake(path.join(dir, 'one')), four: testLake(path.join(dir, 'four')) };
  // The same sources (so the same bronze table names in both lakes), owners under two prefixes.
  const sources = testSources(uniqueId('sh').replace(/-/g, ''));
  const prefixes = { one: `${uniqueId('sh1')}-`, four: `${uniqueId('sh4')}-` };
  const input = (shards: 1 | 4) => {
    const workflowIdPrefix = prefixes[shards === 1 ? 'one' : 'four'];
    return {
      sources, workflowIdPrefix, landingPath: landing, options: { maxFilesPerBatch: 1 },
      // Small batches: several per pass, so the watermark and deduplication cross batches.
      silver: { shards, maxRowsPerBatch: 20 },
      gold: { asOf: `${DAY}T10:00:00Z`, options: { refreshIntervalSeconds: 0 } },
    };
  };
  // Each lake's owners live on a task queue of its own, polled again by each run's worker.
  const queues = { one: uniqueId('tq-sh1'), four: uniqueId('tq-sh4') };
  const run = (shards: 1 | 4) => {
    const which = shards === 1 ? 'one' : 'four';
    return withWorker(({ client, taskQueue }) => client.workflow.execute(medallionPipeline, {
      taskQueue, workflowId: uniqueId(`pipeline-sh${shards}`), args: [input(shards)],
    }), { taskQueue: queues[which], deps: { lake: lakes[which], landingDir: landing } });
  };

  const owners = [...ownerIds(sources, prefixes.one, 1), ...ownerIds(sources, prefixes.four, 4)].map((o) => o.workflowId);
  try {
    await writeFiles(landing, FIRST);
    const [one, four] = [await run(1), await run(4)];
    expect(four!.silverShards).toHaveLength(4);
    expect(four!.silver).toMatchObject({ rows: one!.silver!.rows, quarantined: one!.silver!.quarantined });
    await writeFiles(landing, SECOND);
    await run(1);
    await run(4);

    const [a, b] = [await answers(lakes.one), await answers(lakes.four)];
    // The fixture's cases happened: duplicates, late events, every bad row, disconnects older than connects.
    const dq = Object.fromEntries(a.dq.map((r) => [r.check_name, Number(r.rows)]));
    expect(dq).toMatchObject({
      duplicates: 26, 'rule:late_event': 4, 'rule:ip_private_ipv4': 1, 'rule:speed_allowed': 1, 'rule:status_enum': 1,
      'rule:name_present': 1, 'rule:timestamp_not_future': 1, 'rule:device_enum': 1,
    });
    const olderDisconnects = a.deviceState.filter((d) => d.dispositivo === 'Celular' && range(24, 36).map(ip).includes(String(d.ip)));
    expect(olderDisconnects.map((d) => d.status)).toEqual(Array(12).fill('Conectado'));
    expect(a.events).toHaveLength(24 + 24 + 12 + 12 + 16 + 4);
    expect(b).toEqual(a);

    // Four shards, each with devices of its own: no address in two shards' state or events.
    const perShard = await Promise.all(silverShards(4).map(async (s) => {
      const t = silverShardTables(s);
      return (await sqlRows<{ ip: string }>(`SELECT DISTINCT ip FROM ${t.events} UNION SELECT ip FROM ${t.deviceState}`, lakes.four)).map((r) => r.ip);
    }));
    for (const ips of perShard) expect(ips.length).toBeGreaterThan(0);
    expect(new Set(perShard.flat()).size).toBe(perShard.flat().length);
    expect(await sqlRows(`SELECT shards FROM lake.silver_layout`, lakes.four)).toEqual([{ shards: 4 }]);
  } finally {
    await terminateAll(owners);
  }
}, 600_000);

const AS_OF = `${DAY}T10:00:00Z`;
const one = async (lake: LakeConfig, sql: string) => Number(Object.values((await sqlRows(sql, lake))[0])[0]);

/** The same landing through one shard, in-process, on a lake of its own: what a sharded run must equal. */
async function oneShardAnswers(landing: string, sources: Source[]) {
  const lake = testLake(tempDir('one-shard'));
  const prefix = `${uniqueId('clean')}-`;
  try {
    await withWorker(({ client, taskQueue }) => client.workflow.execute(medallionPipeline, {
      taskQueue, workflowId: uniqueId('pipeline-clean'),
      args: [{ sources, landingPath: landing, workflowIdPrefix: prefix, silver: { shards: 1 }, gold: { asOf: AS_OF } }],
    }), { deps: { lake, landingDir: landing } });
    return await answers(lake);
  } finally {
    await terminateAll(ownerIds(sources, prefix, 1).map((o) => o.workflowId));
  }
}

test('a shard\'s worker SIGKILLed inside its write: the other shard commits meanwhile, the killed batch commits once on the survivor, the answers equal one shard\'s', async () => {
  const { landing, lake, taskQueue, env } = await cliLake('shard-kill', 8, 2000);
  const failpoints = tempDir('fp-shard-kill');
  const sources = DEFAULT_SOURCES;
  // Two worker processes; shard 1's second batch waits right before its COMMIT, where its process is killed.
  const workers = [0, 1].map(() => startWorkerProcess({
    ...env, NETPULSE_FAILPOINT_DIR: failpoints, NETPULSE_FAILPOINT_WAIT_MS: '20000', NETPULSE_FAILPOINT_BATCHES: '^silver-1-of-2:1$', NETPULSE_FAILPOINT_ONCE: '1',
    // Shard 0's batch may land on the worker whose shard-1 batch waits: small batches, room for both.
    NETPULSE_SILVER_BATCHES_PER_WORKER: '2',
  }));
  const client = await testClient();
  try {
    const run = await client.workflow.start(medallionPipeline, {
      taskQueue, workflowId: uniqueId('pipeline-kill'),
      args: [{
        landingPath: landing, options: { maxFilesPerBatch: 1 }, silver: { shards: 2, maxRowsPerBatch: 2000, heartbeatTimeoutSeconds: 2 },
        gold: { asOf: AS_OF, heartbeatTimeoutSeconds: 2 },
      }],
    });
    const inside = await firstFailpoint([failpoints], 120_000);
    expect(inside.batchId).toBe('silver-1-of-2:1');
    // While shard 1's batch sits in its transaction, shard 0 commits.
    const shardCommits = (owner: string) => one(lake, `SELECT count(*) FROM ${LAKE}.snapshots() WHERE json_extract_string(commit_extra_info, '$.owner') = '${owner}'`);
    const before = await shardCommits('silver-0-of-2');
    await waitFor('a commit of shard 0 while shard 1 waits', async () => ((await shardCommits('silver-0-of-2')) > before ? true : undefined), 15_000);
    await stopProcess(workers.find((w) => w.pid === inside.pid)!, 'SIGKILL');
    const pass = (await run.result())!;
    expect(pass.silverShards!.map((s) => s.parked)).toEqual([undefined, undefined]);
    expect(await one(lake, `SELECT count(*) FROM ${LAKE}.snapshots() WHERE json_extract_string(commit_extra_info, '$.batchId') = 'silver-1-of-2:1'`)).toBe(1);
    const dq = Object.fromEntries((await sqlRows<{ check_name: string; n: string }>('SELECT check_name, sum(rows) AS n FROM silver.dq_counts GROUP BY 1', lake))
      .map((r) => [r.check_name, Number(r.n)]));
    expect(dq.rows_in).toBe(16_000);
    expect(dq.events_out + dq.duplicates + dq.quarantined).toBe(16_000);
    expect(await answers(lake)).toEqual(await oneShardAnswers(landing, sources));
  } finally {
    await terminateAll(ownerIds(sources, '', 2).map((o) => o.workflowId));
    for (const w of workers) await stopProcess(w, 'SIGTERM');
  }
}, 600_000);

test('a poison batch parks one shard while the other shard and gold go on; status, owners list, the dashboard and the Web UI say which; retried after the fix, the answers equal one shard\'s', async () => {
  const { landing, lake, taskQueue, env } = await cliLake('shard-poison', 8, 500);
  const failpoints = tempDir('fp-shard-poison');
  writeFileSync(path.join(failpoints, 'poison'), '^silver-1-of-2:');
  const worker = startWorkerProcess({ ...env, NETPULSE_FAILPOINT_DIR: failpoints });
  const client = await testClient();
  const owner = 'silver-1-of-2';
  const input = { landingPath: landing, silver: { shards: 2, maxAttempts: 2 }, gold: { asOf: AS_OF } };
  const app = await buildDashboard({ lake, temporal: testClient });
  try {
    const pass = (await client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId('pipeline-poison'), args: [input] }))!;
    const [healthy, parked] = pass.silverShards!;
    expect(parked).toMatchObject({ source: owner, parked: { batchId: `${owner}:0`, reason: expect.stringMatching(/injected poison/) } });
    expect(healthy).toMatchObject({ source: 'silver-0-of-2', rows: expect.any(Number) });
    expect(healthy.rows).toBeGreaterThan(0);
    expect(healthy.parked).toBeUndefined();
    // Gold refreshed from the healthy shard: every device it counts is one of shard 0's.
    expect(pass.gold).toMatchObject({ batches: 1 });
    const devices = await one(lake, `SELECT devices FROM gold.connections_now WHERE dispositivo = 'Total'`);
    expect(devices).toBe(await one(lake, 'SELECT count(*) FROM silver.device_state_0_of_2'));
    expect(await one(lake, 'SELECT count(*) FROM silver.device_state_1_of_2')).toBe(0);

    // Said by: the Web UI's search attribute, `owners list`, `status` and the dashboard's health panel.
    expect(await listedAsParked(client, owner)).toEqual([owner]);
    expect((await cli(['owners', 'list'], env)).stdout).toMatch(new RegExp(`${owner}.*${owner}:0 since .*injected poison`));
    const status = await cli(['status'], env);
    expect(status.stdout).toMatch(new RegExp(`${owner} .*${owner}:0 since .*injected poison`));
    expect(status.stdout).toMatch(/silver-0-of-2 /);
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const health = ((await (await fetch(`${url}/api/dashboard`)).json()) as { pipeline: { workflowId: string; answer: string }[] }).pipeline;
    expect(health.filter((h) => h.workflowId.startsWith('silver'))).toEqual([
      expect.objectContaining({ workflowId: 'silver-0-of-2', answer: 'answering' }),
      expect.objectContaining({ workflowId: owner, answer: 'parked' }),
    ]);

    rmSync(path.join(failpoints, 'poison')); // the cause is fixed
    expect(await cli(['owners', 'retry-parked', owner], env)).toMatchObject({ code: 0, stdout: expect.stringMatching(/retrying silver-1-of-2:0/) });
    await waitFor('the retried batch', async () => ((await one(lake, 'SELECT count(*) FROM silver.device_state_1_of_2')) > 0 ? true : undefined), 60_000);
    await client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId('pipeline-fixed'), args: [input] });
    expect(await answers(lake)).toEqual(await oneShardAnswers(landing, DEFAULT_SOURCES));
  } finally {
    await app.close();
    await terminateAll(ownerIds(DEFAULT_SOURCES, '', 2).map((o) => o.workflowId));
    await stopProcess(worker, 'SIGTERM');
  }
}, 600_000);

test('netpulse silver reshard 2 → 3 → 1 → 2 between passes: drained, moved in one transaction, the next pass runs the new shards, the answers equal one shard\'s each time; a run asking for the old count is refused with the command', async () => {
  const { landing, lake, taskQueue, env } = await cliLake('reshard', 6, 500);
  const worker = startWorkerProcess(env);
  const client = await testClient();
  const pass = (silver: { shards?: number }) => client.workflow.execute(medallionPipeline, {
    taskQueue, workflowId: uniqueId('pipeline-reshard'), args: [{ landingPath: landing, silver, gold: { asOf: AS_OF } }],
  });
  try {
    expect((await pass({ shards: 2 }))!.silverShards).toHaveLength(2);
    await writeSyntheticLanding({ root: landing, files: 4, rowsPerFile: 500, seed: 2, prefix: 'more' });
    // Bronze takes the new files; silver has not read them: the reshard drains it first.
    await client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId('bronze-only'), args: [{ landingPath: landing, layers: ['bronze'] }] });

    const resharded = await cli(['silver', 'reshard', '--shards', '3'], env);
    expect(resharded).toMatchObject({ code: 0, stdout: expect.stringMatching(/silver has 3 shards from snapshot \d+/) });
    expect(resharded.stderr).toMatch(/silver-0-of-2: drained \(1 batch/);
    expect(await sqlRows(`SELECT shards, reason FROM lake.silver_layout ORDER BY changed_at`, lake)).toEqual([
      { shards: 2, reason: 'created' }, { shards: 3, reason: 'resharded from 2' },
    ]);
    expect(await sqlRows(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'silver' AND table_name LIKE 'events%' ORDER BY 1`, lake))
      .toEqual(['events', 'events_0_of_3', 'events_1_of_3', 'events_2_of_3'].map((table_name) => ({ table_name })));
    expect(await cli(['silver', 'reshard', '--shards', '0'], env)).toMatchObject({ code: 2, stderr: expect.stringMatching(/--shards: "0" is not a whole number from 1 to 64/) });
    const refused = await cli(['run', '--silver-shards', '2'], env);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/the lake's silver has 3 shards, and 2 were asked for.*netpulse silver reshard --shards 2/s);

    const after = (await pass({}))!;
    expect(after.silverShards!.map((s) => s.source)).toEqual(['silver-0-of-3', 'silver-1-of-3', 'silver-2-of-3']);
    expect((await cli(['silver', 'shards'], env)).stdout).toMatch(/silver has 3 shards/);
    expect(await answers(lake)).toEqual(await oneShardAnswers(landing, DEFAULT_SOURCES));

    // Back to one shard (the tables of a lake made before shards), then to two again: the same answers each time.
    for (const [shards, seed] of [[1, 3], [2, 4]]) {
      await writeSyntheticLanding({ root: landing, files: 2, rowsPerFile: 500, seed, prefix: `again${seed}` });
      expect(await cli(['silver', 'reshard', '--shards', String(shards)], env)).toMatchObject({ code: 0 });
      expect((await pass({}))!.silverShards?.length ?? 1).toBe(shards);
      expect(await answers(lake)).toEqual(await oneShardAnswers(landing, DEFAULT_SOURCES));
    }
    expect(await sqlRows(`SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'silver' AND table_name LIKE 'device_state%' ORDER BY 1`, lake))
      .toEqual([{ table_name: 'device_state', table_type: 'VIEW' }, { table_name: 'device_state_0_of_2', table_type: 'BASE TABLE' }, { table_name: 'device_state_1_of_2', table_type: 'BASE TABLE' }]);
  } finally {
    await terminateAll([1, 2, 3].flatMap((n) => ownerIds(DEFAULT_SOURCES, '', n)).map((o) => o.workflowId));
    await stopProcess(worker, 'SIGTERM');
  }
}, 600_000);
