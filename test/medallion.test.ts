// Landing → bronze → silver → gold on a hand-built fixture whose answers are worked out by
// hand below. Real Temporal dev server, real DuckDB lake file.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { LAKE, withLake } from '../lake/catalog';
import { changeFeedSql, replaceRows, tableAtSql } from '../lake/changes';
import { goldSql } from '../activities/gold';
import { goldOptionsSchema } from '../rules/gold';
import { bronzeWorkflowId, type Source } from '../rules/bronze';
import { silverEventSchema } from '../rules/silver';
import { generatorWorkflow } from '../workflows/generator';
import { medallionPipeline } from '../workflows/pipeline';
import {
  cli, closeTestResources, lakeEnv, landingFile, type Row, sqlRows, startWorkerProcess, stopProcess, tempDir, terminateAll, testClient, testLake, testPipeline, uniqueId, withWorker,
} from './helpers';

afterAll(closeTestResources);


const D = '2026-03-01 10:';
const FIXTURE: Record<string, Row[]> = {
  'Computador/Conectado': [
    ['Ana', '10.0.0.1', `${D}25:00`, 'Computador', 500, 'Conectado', 'srv-a'],
    ['Bruno', '10.0.0.2', `${D}25:30`, 'Computador', 100, 'Conectado', 'srv-a'],
    ['Caio', '10.0.0.3', `${D}10:00`, 'Computador', 50, 'Conectado', 'srv-b'],
    ['Duda', '8.8.8.8', `${D}27:00`, 'Computador', 100, 'Conectado', 'srv-b'], // public IP
    ['Edu', '10.0.0.5', `${D}27:00`, 'Computador', 300, 'Conectado', 'srv-b'], // speed not offered
    ['Ana', '10.0.0.1', `${D}25:00`, 'Computador', 500, 'Conectado', 'srv-a'], // redelivered
  ],
  'Celular/Conectado': [
    ['Fabi', '192.168.0.7', `${D}28:00`, 'Celular', 1000, 'Conectado', 'srv-b'],
    ['Gil', '172.16.0.8', `${D}29:00`, 'Celular', 10, 'Conectado', 'srv-b'],
    ['Hugo', '192.168.0.9', `${D}15:00`, 'Celular', 25, 'Conectado', 'srv-a'],
    ['  ', '10.0.0.10', `${D}28:00`, 'Celular', 50, 'Conectado', 'srv-a'], // no name
    ['Ivo', '10.0.0.11', '2099-01-01 00:00:00', 'Celular', 50, 'Conectado', 'srv-a'], // future
    ['Jo', '10.0.0.12', `${D}28:00`, 'Tablet', 50, 'Conectado', 'srv-a'], // unknown device
  ],
  'Computador/Desconectado': [
    ['Bruno', '10.0.0.2', `${D}28:00`, 'Computador', 100, 'Desconectado', 'srv-a'],
    ['Lia', '10.0.0.14', `${D}05:00`, 'Computador', 200, 'Desconectado', 'srv-b'],
    ['Mo', '10.0.0.15', `${D}05:00`, 'Computador', 200, 'desligado', 'srv-b'], // unknown status
    ['Nina', '10.0.0.16', `${D}06:00`, ' computador ', 15, 'DESCONECTADO', 'srv-b'], // normalised, valid
  ],
  'Celular/Desconectado': [
    ['Gil', '172.16.0.8', `${D}20:00`, 'Celular', 10, 'Desconectado', 'srv-b'], // older than his 10:29 connect
    ['Otto', '192.168.0.18', `${D}22:00`, 'Celular', 5, 'Desconectado', 'srv-a'],
  ],
};
const REDELIVERED: Row[] = [['Otto', '192.168.0.18', `${D}22:00`, 'Celular', 5, 'Desconectado', 'srv-a']];
const FABI_LEAVES: Row[] = [['Fabi', '192.168.0.7', `${D}29:30`, 'Celular', 1000, 'Desconectado', 'srv-b']];

test('hand-built fixture: every gold figure, quarantine reasons, idempotent re-run, and one more batch', async () => {
  const dir = tempDir('medallion');
  const landing = path.join(dir, 'landing');
  const lake = testLake(dir);
  const tag = `m${Math.random().toString(36).slice(2, 6)}`;
  const sources: Source[] = Object.keys(FIXTURE).map((folder) => ({
    name: `${tag}_${folder.replace('/', '_').toLowerCase()}`, label: folder.replace('/', ' '), path: folder,
  }));
  for (const [folder, rows] of Object.entries(FIXTURE)) await landingFile(landing, folder, 'f1', rows);
  await landingFile(landing, 'Celular/Desconectado', 'f2', REDELIVERED);

  const prefix = `${tag}-`;
  const ids = [...sources.map((s) => bronzeWorkflowId(s, prefix)), `${prefix}silver`, `${prefix}gold`];
  const input = {
    sources, landingPath: landing, workflowIdPrefix: prefix,
    gold: {
      asOf: '2026-03-01T10:30:00Z',
      options: { serverCapacityMbps: { 'srv-a': 600, 'srv-b': 2000 }, upgradeMinSamples: 1 },
    },
  };
  const gold = async () => Object.fromEntries(await Promise.all(
    ['connections_now', 'events_per_minute', 'devices_last_10_min', 'bandwidth_now', 'high_speed_share', 'bandwidth_by_device', 'server_load', 'heavy_clients']
      .map(async (t) => [t, await sqlRows(`SELECT * FROM gold.${t} ORDER BY ALL`, lake)]),
  ));
  const commits = async () => Number((await sqlRows<{ n: string }>(`SELECT count(*) AS n FROM ${LAKE}.snapshots() WHERE commit_message IS NOT NULL`, lake))[0].n);

  try {
    await withWorker(async ({ client, taskQueue }) => {
      const run = () => client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId('pipeline'), args: [input] });
      // The first refresh reads device state in place (as for a large state), the later ones a copy: the same figures.
      process.env.NETPULSE_GOLD_COPY_MAX_DEVICES = '1';
      const first = (await run().finally(() => delete process.env.NETPULSE_GOLD_COPY_MAX_DEVICES))!;
      expect(first.bronze.map((b) => b.rows)).toEqual([6, 6, 4, 3]);
      expect(first.silver).toMatchObject({ rows: 11, quarantined: 6, details: { rowsIn: 19, duplicates: 2 } });
      expect(first.gold).toMatchObject({ batches: 1 });

      // Silver: quarantine reasons, data-quality counts, and zod agreeing with the SQL rules.
      const quarantine = await sqlRows<{ nome: string; rule: string }>(
        `SELECT raw->>'Nome' AS nome, rule FROM silver.quarantine ORDER BY rule`, lake);
      expect(quarantine).toEqual([
        { nome: 'Jo', rule: 'device_enum' }, { nome: 'Duda', rule: 'ip_private_ipv4' }, { nome: '  ', rule: 'name_present' },
        { nome: 'Edu', rule: 'speed_allowed' }, { nome: 'Mo', rule: 'status_enum' }, { nome: 'Ivo', rule: 'timestamp_not_future' },
      ]);
      const dq = Object.fromEntries((await sqlRows<{ check_name: string; rows: string }>('SELECT check_name, rows FROM silver.dq_counts', lake)).map((r) => [r.check_name, Number(r.rows)]));
      expect(dq).toMatchObject({ rows_in: 19, passed: 13, quarantined: 6, duplicates: 2, events_out: 11, 'rule:ip_private_ipv4': 1 });
      const events = await sqlRows<Record<string, unknown>>('SELECT nome, ip, dispositivo, status, velocidade_mbps, hora_conexao::VARCHAR AS hora_conexao, servidor FROM silver.events', lake);
      expect(events).toHaveLength(11);
      for (const e of events) expect(silverEventSchema.safeParse(e).success).toBe(true);
      expect(await sqlRows(`SELECT ip, dispositivo, status FROM silver.device_state WHERE nome IN ('Nina', 'Gil', 'Bruno') ORDER BY nome`, lake)).toEqual([
        { ip: '10.0.0.2', dispositivo: 'Computador', status: 'Desconectado' },
        { ip: '172.16.0.8', dispositivo: 'Celular', status: 'Conectado' },
        { ip: '10.0.0.16', dispositivo: 'Computador', status: 'Desconectado' },
      ]);

      const g = await gold();
      expect(g.connections_now).toEqual([
        { dispositivo: 'Celular', connected: '3', disconnected: '1', devices: '4' },
        { dispositivo: 'Computador', connected: '2', disconnected: '3', devices: '5' },
        { dispositivo: 'Total', connected: '5', disconnected: '4', devices: '9' },
      ]);
      expect(g.events_per_minute).toHaveLength(10);
      expect(g.events_per_minute).toContainEqual({ minute: '2026-03-01 10:25:00', dispositivo: 'Computador', status: 'Conectado', events: '2' });
      expect(g.devices_last_10_min.map((r: Record<string, unknown>) => [r.dispositivo, r.devices_connected])).toEqual([['Celular', '2'], ['Computador', '2'], ['Total', '4']]);
      expect(g.bandwidth_now).toEqual([
        { dispositivo: 'Celular', connected_devices: '3', mbps_in_use: '1035' },
        { dispositivo: 'Computador', connected_devices: '2', mbps_in_use: '550' },
        { dispositivo: 'Total', connected_devices: '5', mbps_in_use: '1585' },
      ]);
      expect(g.high_speed_share).toEqual([{ threshold_mbps: 500, connected_devices: '5', high_speed_devices: '2', share_pct: 40 }]);
      expect(g.bandwidth_by_device).toEqual([
        { dispositivo: 'Celular', connected_devices: '3', sum_mbps: '1035', avg_mbps: 345, p50_mbps: 25, p95_mbps: 902.5 },
        { dispositivo: 'Computador', connected_devices: '2', sum_mbps: '550', avg_mbps: 275, p50_mbps: 275, p95_mbps: 477.5 },
        { dispositivo: 'Total', connected_devices: '5', sum_mbps: '1585', avg_mbps: 317, p50_mbps: 50, p95_mbps: 900 },
      ]);
      expect(g.server_load).toEqual([
        { servidor: 'srv-a', devices_connected: '2', mbps_in_use: '525', capacity_mbps: '600', utilisation_pct: 87.5, samples_in_window: '1', samples_above: '1', needs_upgrade: true, over_capacity_now: false },
        { servidor: 'srv-b', devices_connected: '3', mbps_in_use: '1060', capacity_mbps: '2000', utilisation_pct: 53, samples_in_window: '1', samples_above: '0', needs_upgrade: false, over_capacity_now: false },
      ]);
      expect(g.heavy_clients).toEqual([{
        ip: '192.168.0.7', dispositivo: 'Celular', nome: 'Fabi', servidor: 'srv-b', velocidade_mbps: 1000,
        server_median_mbps: 50, times_median: 20, throttle_to_mbps: 100, heavy_on_server: '1',
      }]);

      // Running again changes nothing: no new commit, the same figures.
      const before = await commits();
      const second = (await run())!;
      expect(second.bronze.every((b) => b.files === 0)).toBe(true);
      expect(second.silver).toMatchObject({ batches: 0 });
      expect(second.gold).toMatchObject({ batches: 0 });
      expect(await commits()).toBe(before);
      expect(await gold()).toEqual(g);

      // One more batch: Fabi disconnects. Exactly the figures that depend on her change.
      await landingFile(landing, 'Celular/Desconectado', 'f3', FABI_LEAVES);
      const third = (await run())!;
      expect(third.silver).toMatchObject({ rows: 1, quarantined: 0 });
      const h = await gold();
      expect(h.connections_now).toEqual([
        { dispositivo: 'Celular', connected: '2', disconnected: '2', devices: '4' },
        g.connections_now[1],
        { dispositivo: 'Total', connected: '4', disconnected: '5', devices: '9' },
      ]);
      expect(h.events_per_minute).toEqual([...g.events_per_minute, { minute: '2026-03-01 10:29:00', dispositivo: 'Celular', status: 'Desconectado', events: '1' }]
        .sort((a, b) => JSON.stringify(Object.values(a)).localeCompare(JSON.stringify(Object.values(b)))));
      expect(h.devices_last_10_min).toEqual(g.devices_last_10_min);
      expect(h.bandwidth_now).toEqual([
        { dispositivo: 'Celular', connected_devices: '2', mbps_in_use: '35' }, g.bandwidth_now[1],
        { dispositivo: 'Total', connected_devices: '4', mbps_in_use: '585' },
      ]);
      expect(h.high_speed_share).toEqual([{ threshold_mbps: 500, connected_devices: '4', high_speed_devices: '1', share_pct: 25 }]);
      expect(h.bandwidth_by_device).toEqual([
        { dispositivo: 'Celular', connected_devices: '2', sum_mbps: '35', avg_mbps: 17.5, p50_mbps: 17.5, p95_mbps: 24.25 },
        g.bandwidth_by_device[1],
        { dispositivo: 'Total', connected_devices: '4', sum_mbps: '585', avg_mbps: 146.25, p50_mbps: 37.5, p95_mbps: 432.5 },
      ]);
      expect(h.server_load).toEqual([
        g.server_load[0],
        { servidor: 'srv-b', devices_connected: '2', mbps_in_use: '60', capacity_mbps: '2000', utilisation_pct: 3, samples_in_window: '1', samples_above: '0', needs_upgrade: false, over_capacity_now: false },
      ]);
      expect(h.heavy_clients).toEqual([]);

      // Earlier versions stay readable by time travel: gold as of its first commit.
      const asOfFirst = await sqlRows(`SELECT * FROM ${tableAtSql('gold.heavy_clients', first.gold!.toVersion)} ORDER BY ALL`, lake);
      expect(asOfFirst).toEqual(g.heavy_clients);
      // Device state's change feed is DuckLake's: Fabi inserted, then updated by the third pass.
      const stateFeed = await sqlRows(`SELECT nome, status, change_type FROM (${changeFeedSql('silver.device_state', 0, third.silver!.toVersion)})
        WHERE nome = 'Fabi' ORDER BY snapshot_id, change_type DESC`, lake);
      expect(stateFeed).toEqual([
        { nome: 'Fabi', status: 'Conectado', change_type: 'insert' },
        { nome: 'Fabi', status: 'Conectado', change_type: 'update_preimage' },
        { nome: 'Fabi', status: 'Desconectado', change_type: 'update_postimage' },
      ]);
    }, { deps: { lake, landingDir: landing } });
  } finally {
    await terminateAll(ids);
  }
});

test('generator population mode: stable clients, consistent connect/disconnect, Servidor evolves bronze and feeds gold', async () => {
  const dir = tempDir('population');
  const landing = path.join(dir, 'landing');
  const lake = testLake(dir);
  const tag = `p${Math.random().toString(36).slice(2, 6)}`;
  const sources: Source[] = ['Computador/Conectado', 'Celular/Conectado', 'Computador/Desconectado', 'Celular/Desconectado']
    .map((folder) => ({ name: `${tag}_${folder.replace('/', '_').toLowerCase()}`, label: folder.replace('/', ' '), path: folder }));
  const prefix = `${tag}-`;
  const ids = [...sources.map((s) => bronzeWorkflowId(s, prefix)), `${prefix}silver`, `${prefix}gold`];
  const population = { clients: 60, servers: 4, regions: ['sp', 'rj'] };
  try {
    await withWorker(async ({ client, taskQueue }) => {
      const pipeline = () => client.workflow.execute(medallionPipeline, {
        taskQueue, workflowId: uniqueId('pipeline'),
        // The population's simulated clock starts months before the first events: inside a year-long watermark.
        args: [{ sources, landingPath: landing, workflowIdPrefix: prefix, silver: { options: { watermarkMinutes: 525_600 } }, gold: { options: { refreshIntervalSeconds: 0 } } }],
      });
      // The source system's mode first, then the switch to a population: bronze gains Servidor.
      await client.workflow.execute(generatorWorkflow, { taskQueue, workflowId: uniqueId('gen'), args: [{ ticks: 1, intervalSeconds: 0, seed: 3, landingPath: landing }] });
      await pipeline();
      const result = await client.workflow.execute(generatorWorkflow, {
        taskQueue, workflowId: uniqueId('gen'),
        args: [{ mode: 'population', population, ticks: 6, intervalSeconds: 0.05, startTime: '2026-05-01T08:00:00Z', seed: 3, landingPath: landing }],
      });
      expect(result.connected).toBeDefined();
      await pipeline();
    }, { deps: { lake, landingDir: landing } });

    const population_events = `SELECT * FROM read_parquet('${landing}/*/*/*.parquet', union_by_name = true) WHERE Servidor IS NOT NULL`;
    // Each client keeps one name, device, plan and server; at most `clients` distinct IPs.
    expect(await sqlRows(`SELECT count(DISTINCT Ip) <= 60 AS bounded, max(n) AS variants FROM (
      SELECT Ip, count(DISTINCT (Nome, Dispositivo_de_Acesso, Velocidade_de_Conexao, Servidor)) AS n FROM (${population_events}) GROUP BY Ip)`))
      .toEqual([{ bounded: true, variants: '1' }]);
    // A device's statuses alternate in time, starting with a connect.
    expect(await sqlRows(`SELECT count(*) AS broken FROM (
      SELECT Status_Conexao, lag(Status_Conexao) OVER (PARTITION BY Ip ORDER BY Hora_Conexao) AS previous
      FROM (${population_events})) WHERE Status_Conexao = previous OR (previous IS NULL AND Status_Conexao <> 'Conectado')`))
      .toEqual([{ broken: '0' }]);
    // A process that did not write them (the CLI) reads every Servidor the four evolved bronze
    // tables got: DuckLake 1.4.4 reads a column added to an inlined table as NULL there.
    const servidorCounts = `SELECT ${sources.map((s) => `(SELECT count(Servidor) FROM bronze.${s.name})`).join(' + ')} AS n`;
    const fresh = await cli(['query', servidorCounts, '--format', 'csv'], lakeEnv(lake));
    expect(fresh).toMatchObject({ code: 0, stdout: `n\n${(await sqlRows<{ n: string }>(`SELECT count(*) AS n FROM (${population_events})`))[0].n}\n` });
    const servidorAdded = await sqlRows<{ schema_version: number }>(
      `SELECT DISTINCT schema_version FROM lake.schema_versions WHERE column_name = 'Servidor'`, lake);
    expect(servidorAdded).toEqual([{ schema_version: 2 }]);
    // Gold's server load covers exactly the generated servers, with the device counts of silver.
    const load = await sqlRows<{ servidor: string; devices_connected: string }>('SELECT servidor, devices_connected FROM gold.server_load ORDER BY 1', lake);
    expect(load.map((l) => l.servidor)).toEqual(['srv-rj-01', 'srv-rj-02', 'srv-sp-01', 'srv-sp-02']);
    const expected = await sqlRows<{ servidor: string; devices_connected: string }>(
      `SELECT servidor, count(*) FILTER (WHERE status = 'Conectado') AS devices_connected FROM silver.device_state WHERE servidor IS NOT NULL GROUP BY 1 ORDER BY 1`, lake);
    expect(load).toEqual(expected);

    // Heavy clients: each server's heaviest (fastest plan, then address) up to the limit, and how many it has.
    // (Devices of the source system's mode have no server: they are '(none)'.)
    const allHeavy = (factor: number) => `SELECT ip, dispositivo, servidor, velocidade_mbps, count(*) OVER (PARTITION BY servidor) AS heavy_on_server,
        row_number() OVER (PARTITION BY servidor ORDER BY velocidade_mbps DESC, ip DESC, dispositivo DESC) AS rank_on_server
      FROM (SELECT * REPLACE (coalesce(servidor, '(none)') AS servidor) FROM silver.device_state WHERE status = 'Conectado')
      JOIN (SELECT coalesce(servidor, '(none)') AS servidor, median(velocidade_mbps) AS m FROM silver.device_state WHERE status = 'Conectado' GROUP BY 1) USING (servidor)
      WHERE velocidade_mbps > ${factor} * m`;
    const heavyOf = (sql: string) => sqlRows(`SELECT ip, dispositivo, servidor, velocidade_mbps, heavy_on_server FROM (${sql}) ORDER BY ALL`, lake);
    expect(await heavyOf('SELECT * FROM gold.heavy_clients')).toEqual(await heavyOf(`${allHeavy(3)} QUALIFY rank_on_server <= 50`)); // the defaults
    // Every population device ended disconnected: connect them (here only) so that every server,
    // above its median (factor 1), has several heavy clients, two of each listed.
    await withLake(lake, (db) => db.run(`UPDATE silver.device_state SET status = 'Conectado' WHERE servidor IS NOT NULL`));
    const aboveMedian = await heavyOf(allHeavy(1));
    expect(new Set(aboveMedian.filter((h) => Number(h.heavy_on_server) > 2).map((h) => h.servidor)).size).toBe(5);
    const topTwo = goldSql('heavy_clients', '2026-05-01T09:00:00Z', goldOptionsSchema.parse({ heavyClientFactor: 1, heavyClientsPerServer: 2 }));
    expect(await heavyOf(topTwo)).toEqual(await heavyOf(`${allHeavy(1)} QUALIFY rank_on_server <= 2`));
    // A gold table made before its question gained a column gets it at the next refresh.
    await withLake(lake, async (db) => {
      await db.run('ALTER TABLE gold.heavy_clients DROP COLUMN heavy_on_server');
      expect(await replaceRows(db, 'gold.heavy_clients', topTwo)).toMatchObject({ rowsInserted: expect.any(Number) });
    });
    expect(await heavyOf('SELECT * FROM gold.heavy_clients')).toEqual(await heavyOf(topTwo));
  } finally {
    await terminateAll(ids);
  }
});

test('a lake whose silver events predate event_hash: redeliveries are found column by column until the watermark passes the old events, then by hash; device state follows the latest event, ties included', async () => {
  const dir = tempDir('upgrade');
  const landing = path.join(dir, 'landing');
  const lake = testLake(dir);
  const { sources, ids, workflowIdPrefix } = testPipeline('upg');
  const input = { sources, landingPath: landing, workflowIdPrefix, layers: ['bronze', 'silver'] as ('bronze' | 'silver')[], silver: { options: { watermarkMinutes: 30 } } };
  const event = (nome: string, ip: string, hora: string): Row => [nome, ip, `2026-11-29 ${hora}:00`, 'Computador', 100, 'Conectado', 'srv-a'];
  const taskQueue = uniqueId('tq-upg');
  const env = { TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS!, NETPULSE_TASK_QUEUE: taskQueue, NETPULSE_LANDING_DIR: landing, ...lakeEnv(lake) };
  const client = await testClient();
  const pass = async (name: string) => (await client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId(name), args: [input] }))!;
  const hashedFrom = async () => {
    const [{ result }] = await sqlRows<{ result: string }>('SELECT result FROM lake.fence_silver', lake);
    return (JSON.parse(result) as { details: { hashedFrom?: string } }).details.hashedFrom;
  };
  let worker = startWorkerProcess(env);
  try {
    await landingFile(landing, 'Computador/Conectado', 'first', [event('Ana', '10.0.0.1', '11:50'), event('Bia', '10.0.0.2', '11:51')]);
    await pass('upg-1');
    expect(await hashedFrom()).toBe('all');
    await stopProcess(worker, 'SIGTERM');
    // As an older netpulse left the lake: no event_hash column, no hashedFrom in silver's fence, and
    // the text event key those versions wrote (rows kept out of the catalog, as addColumn did then).
    await sqlRows('ALTER TABLE silver.events DROP COLUMN event_hash', lake);
    await sqlRows(`CALL ${LAKE}.set_option('data_inlining_row_limit', 0, schema => 'silver', table_name => 'events')`, lake);
    await sqlRows('ALTER TABLE silver.events ADD COLUMN event_key VARCHAR', lake);
    await sqlRows('UPDATE silver.events SET event_key = hash(ip, dispositivo, hora_conexao, status)::VARCHAR', lake);
    const [{ result }] = await sqlRows<{ result: string }>('SELECT result FROM lake.fence_silver', lake);
    const older = JSON.parse(result) as { details: Record<string, unknown> };
    delete older.details.hashedFrom;
    await sqlRows(`UPDATE lake.fence_silver SET result = '${JSON.stringify(older).replace(/'/g, "''")}'`, lake);

    worker = startWorkerProcess(env); // a new version's worker: it adds the column (empty for the old events)
    await landingFile(landing, 'Computador/Conectado', 'again', [event('Ana', '10.0.0.1', '11:50'), event('Caio', '10.0.0.3', '11:52')]);
    expect((await pass('upg-2')).silver).toMatchObject({ rows: 1, details: expect.objectContaining({ duplicates: 1 }) });
    expect(await hashedFrom()).toBe('2026-11-29 11:51:00');
    expect(await sqlRows('SELECT nome, event_hash IS NULL AS unhashed FROM silver.events ORDER BY nome', lake)).toEqual([
      { nome: 'Ana', unhashed: true }, { nome: 'Bia', unhashed: true }, { nome: 'Caio', unhashed: false },
    ]);
    // 12:30 moves the watermark to 12:00, past every unhashed event: from then on hashes find the redelivery.
    await landingFile(landing, 'Computador/Conectado', 'later', [event('Dani', '10.0.0.4', '12:30'), event('Bia', '10.0.0.2', '12:31')]);
    await pass('upg-3');
    await landingFile(landing, 'Computador/Conectado', 'later-again', [event('Dani', '10.0.0.4', '12:30')]);
    expect((await pass('upg-4')).silver).toMatchObject({ rows: 0, details: expect.objectContaining({ duplicates: 1 }) });
    // Events at the very time of the stored ones: the tie is broken by event key, as inside a batch.
    // With these keys Dani's stored event keeps its place and Bia's new one takes it (both ways run).
    await landingFile(landing, 'Computador/Desconectado', 'tie', [
      ['Dani', '10.0.0.4', '2026-11-29 12:30:00', 'Computador', 100, 'Desconectado', 'srv-a'],
      ['Bia', '10.0.0.2', '2026-11-29 12:31:00', 'Computador', 100, 'Desconectado', 'srv-a'],
    ]);
    expect((await pass('upg-5')).silver).toMatchObject({ rows: 2 });
    expect(await sqlRows('SELECT count(*)::INTEGER AS n FROM silver.events', lake)).toEqual([{ n: 7 }]);
    // Device state holds each device's latest event by (time, key).
    const latest = `SELECT ip, dispositivo, status, hora_conexao AS last_event_at, event_key AS last_event_key FROM silver.events
      QUALIFY row_number() OVER (PARTITION BY ip, dispositivo ORDER BY hora_conexao DESC, event_key DESC) = 1`;
    const state = await sqlRows('SELECT ip, dispositivo, status, last_event_at, last_event_key FROM silver.device_state ORDER BY ALL', lake);
    expect(state).toEqual(await sqlRows(`${latest} ORDER BY ALL`, lake));
    // The older lake's text key stays filled in for every event (new lakes have no such column).
    expect(await sqlRows('SELECT count(*)::INTEGER AS n FROM silver.events WHERE event_key IS NULL', lake)).toEqual([{ n: 0 }]);
    expect(state.map((d) => [d.last_event_at, d.status])).toEqual([
      ['2026-11-29 11:50:00', 'Conectado'], ['2026-11-29 12:31:00', 'Desconectado'], ['2026-11-29 11:52:00', 'Conectado'], ['2026-11-29 12:30:00', 'Conectado'],
    ]);
  } finally {
    await terminateAll(ids);
    await stopProcess(worker, 'SIGTERM');
  }
});

test('silver types text values the same way whatever type bronze gave their column: typed, text, or rescued from a declared type', async () => {
  const dir = tempDir('text-columns');
  const landing = path.join(dir, 'landing');
  const lake = testLake(dir);
  const { sources, ids, workflowIdPrefix } = testPipeline('txt');
  // Celular/Conectado declares no types: bronze infers VARCHAR from its text file. Celular/Desconectado
  // keeps the source system's declared types: the same kind of text file goes into TIMESTAMP and
  // BIGINT columns, and what does not fit them is rescued.
  const undeclared = sources.find((s) => s.path === 'Celular/Conectado')!;
  undeclared.schemaHints = {};
  const input = { sources, landingPath: landing, workflowIdPrefix, layers: ['bronze', 'silver'] as ('bronze' | 'silver')[] };
  await landingFile(landing, 'Computador/Conectado', 'typed', [['Ana', '10.0.0.1', '2026-11-29 10:00:00.25', 'Computador', 200, 'Conectado', 'srv-a']]);
  const textFile = async (folder: string, status: string, ip: (n: number) => string) => {
    mkdirSync(path.join(landing, folder), { recursive: true });
    await sqlRows(`COPY (SELECT * FROM (VALUES
        ('Bia', 'Rua X, 1', '${ip(2)}', '2026-11-29 10:00:00.25', 'Celular', ' 200 ', '${status}', 'srv-a'),
        ('Caio', 'Rua X, 1', '${ip(3)}', '2026-11-29 10:01:00', 'Celular', 'fast', '${status}', 'srv-a'),
        ('Duda', 'Rua X, 1', '${ip(4)}', 'not a time', 'Celular', '50', '${status}', 'srv-a'),
        ('Eva', 'Rua X, 1', '${ip(5)}', '2026-11-29 10:02:00', 'Celular', '99.9', '${status}', 'srv-a'),
        ('Fabi', 'Rua X, 1', '${ip(6)}', '2026-11-29T10:03:00', 'Celular', '100', '${status}', 'srv-a'))
      AS t(Nome, Endereco, Ip, Hora_Conexao, Dispositivo_de_Acesso, Velocidade_de_Conexao, Status_Conexao, Servidor))
      TO '${path.join(landing, folder, 'text.parquet')}' (FORMAT parquet)`);
  };
  await textFile('Celular/Conectado', 'Conectado', (n) => `192.168.0.${n}`);
  await textFile('Celular/Desconectado', 'Desconectado', (n) => `192.168.1.${n}`);
  try {
    await withWorker(async ({ client, taskQueue }) => {
      await client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId('txt'), args: [input] });
    }, { deps: { lake, landingDir: landing } });
    const typesOf = async (folder: string) => (await sqlRows<{ t: string }>(`SELECT data_type AS t FROM information_schema.columns
      WHERE table_schema = 'bronze' AND table_name = '${sources.find((s) => s.path === folder)!.name}'
        AND column_name IN ('Hora_Conexao', 'Velocidade_de_Conexao') ORDER BY column_name`, lake)).map((r) => r.t);
    expect(await typesOf('Computador/Conectado')).toEqual(['TIMESTAMP', 'BIGINT']);
    expect(await typesOf('Celular/Conectado')).toEqual(['VARCHAR', 'VARCHAR']);
    expect(await typesOf('Celular/Desconectado')).toEqual(['TIMESTAMP', 'BIGINT']);
    // Declared types: the values that survive the round trip are typed, the others rescued, row by row.
    const declared = sources.find((s) => s.path === 'Celular/Desconectado')!.name;
    expect(await sqlRows(`SELECT Nome AS nome, Velocidade_de_Conexao AS speed, Hora_Conexao::VARCHAR AS hora, _rescued_data->>'Velocidade_de_Conexao' AS speed_rescued,
        _rescued_data->>'Hora_Conexao' AS hora_rescued FROM bronze.${declared} ORDER BY Nome`, lake)).toEqual([
      { nome: 'Bia', speed: null, hora: '2026-11-29 10:00:00.25', speed_rescued: ' 200 ', hora_rescued: null },
      { nome: 'Caio', speed: null, hora: '2026-11-29 10:01:00', speed_rescued: 'fast', hora_rescued: null },
      { nome: 'Duda', speed: '50', hora: null, speed_rescued: null, hora_rescued: 'not a time' },
      { nome: 'Eva', speed: null, hora: '2026-11-29 10:02:00', speed_rescued: '99.9', hora_rescued: null },
      { nome: 'Fabi', speed: '100', hora: null, speed_rescued: null, hora_rescued: '2026-11-29T10:03:00' },
    ]);
    // Silver's answer per row is the same for the three sources: ' 200 ' is 200, '99.9' is not a plan speed.
    expect(await sqlRows('SELECT nome, status, hora_conexao::VARCHAR AS hora, velocidade_mbps FROM silver.events ORDER BY nome, status', lake)).toEqual([
      { nome: 'Ana', status: 'Conectado', hora: '2026-11-29 10:00:00.25', velocidade_mbps: 200 },
      ...['Conectado', 'Desconectado'].map((status) => ({ nome: 'Bia', status, hora: '2026-11-29 10:00:00.25', velocidade_mbps: 200 })),
      ...['Conectado', 'Desconectado'].map((status) => ({ nome: 'Fabi', status, hora: '2026-11-29 10:03:00', velocidade_mbps: 100 })),
    ]);
    expect(await sqlRows(`SELECT raw->>'Nome' AS nome, rule, count(*)::INTEGER AS n FROM silver.quarantine GROUP BY ALL ORDER BY nome`, lake)).toEqual([
      { nome: 'Caio', rule: 'speed_allowed', n: 2 }, { nome: 'Duda', rule: 'timestamp_present', n: 2 }, { nome: 'Eva', rule: 'speed_allowed', n: 2 },
    ]);
  } finally {
    await terminateAll(ids);
  }
});

test('capacity forecast: the trend of each server\'s utilisation, the days until it is full, or why there is none', async () => {
  const lake = testLake(tempDir('forecast'));
  const asOf = '2026-05-01T10:00:00Z';
  // Ten hours of load snapshots: srv-grow climbs 1 point an hour to 60 %, srv-flat stays at 40 %,
  // srv-fall drops, srv-new has one snapshot, srv-full is at 104 %.
  await withLake(lake, async (db) => {
    await db.run(`CREATE TABLE gold.server_load_history (as_of TIMESTAMP, servidor VARCHAR, devices_connected BIGINT, mbps_in_use BIGINT,
      capacity_mbps BIGINT, utilisation_pct DOUBLE)`);
    await db.run(`INSERT INTO gold.server_load_history
      SELECT TIMESTAMP '2026-05-01 00:00:00' + to_hours(h), s.servidor, 1, 1, 100,
             CASE s.servidor WHEN 'srv-grow' THEN 50 + h WHEN 'srv-flat' THEN 40 WHEN 'srv-fall' THEN 90 - 2 * h ELSE 94 + h END
      FROM range(11) r(h), (VALUES ('srv-grow'), ('srv-flat'), ('srv-fall'), ('srv-full')) s(servidor)
      UNION ALL SELECT TIMESTAMP '2026-05-01 10:00:00', 'srv-new', 1, 1, 100, 70`);
  });
  const forecast = (options: object) => sqlRows(`SELECT servidor, samples, utilisation_pct, trend_pct_per_day, fit_r2, forecast, days_until_full
    FROM (${goldSql('capacity_forecast', asOf, goldOptionsSchema.parse(options))}) ORDER BY servidor`, lake);
  expect(await forecast({})).toEqual([
    { servidor: 'srv-fall', samples: '11', utilisation_pct: 70, trend_pct_per_day: -48, fit_r2: 1, forecast: 'not growing', days_until_full: null },
    { servidor: 'srv-flat', samples: '11', utilisation_pct: 40, trend_pct_per_day: 0, fit_r2: 1, forecast: 'not growing', days_until_full: null },
    { servidor: 'srv-full', samples: '11', utilisation_pct: 104, trend_pct_per_day: 24, fit_r2: 1, forecast: 'full', days_until_full: 0 },
    // 1 point an hour is 24 a day: 40 points to go, 1.67 days
    { servidor: 'srv-grow', samples: '11', utilisation_pct: 60, trend_pct_per_day: 24, fit_r2: 1, forecast: 'forecast', days_until_full: 1.67 },
    { servidor: 'srv-new', samples: '1', utilisation_pct: 70, trend_pct_per_day: null, fit_r2: 0, forecast: 'not enough history', days_until_full: null },
  ]);
  // A window of 4 hours holds 4 snapshots: fewer than the 10 a forecast needs by default.
  expect((await forecast({ forecastHours: 4 })).map((r) => (r as { forecast: string }).forecast)).toEqual(Array(5).fill('not enough history'));
});
