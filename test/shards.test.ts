// Silver sharded by device: the same landing through one shard and through four gives the same
// answers (events, quarantine, duplicates, device state, every gold table), each shard holding
// only its devices. Real Temporal server, PostgreSQL catalog and DuckDB.
import path from 'node:path';
import { GOLD_TABLES } from '../rules/gold';
import { silverShards, silverShardTables } from '../rules/shards';
import { medallionPipeline } from '../workflows/pipeline';
import {
  closeTestResources, landingFile, type Row, sqlRows, tempDir, terminateAll, testLake, testSources, uniqueId, withWorker,
} from './helpers';
import { ownerIds } from '../client/owner-state';

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
async function answers(lake: ReturnType<typeof testLake>) {
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
