// The dashboard's /metrics and the shipped alerting rules, end to end: a lake the real pipeline
// filled with a server over capacity, scraped by Debian's Prometheus loading alerts/netpulse.rules.yml
// (its `for:` set to 0s, so nothing waits a minute), alerting through Debian's Alertmanager to a
// webhook that is a real HTTP server in this test.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildDashboard } from '../client/dashboard';
import { withLake, LAKE, type LakeConfig } from '../lake/catalog';
import { closeTestResources, overCapacityLake, sqlRows, stopProcess, tempDir, terminateAll, testClient, waitFor, withWorker } from './helpers';

const ALERTS = path.join(__dirname, '..', 'alerts');
const RULES = path.join(ALERTS, 'netpulse.rules.yml');
const SHIPPED_ALERTS = ['ServerOverCapacity', 'ServerNeedsUpgrade', 'ServerFullSoon', 'HeavyClientUnthrottled', 'PipelineStale',
  'LakeUnreadable', 'OwnerParked', 'OwnerNotAnswering', 'NetpulseMetricsDown'];
const daemons: ChildProcess[] = [];
const servers: { close(): unknown }[] = [];
const workflowIds: string[] = [];

afterAll(async () => {
  for (const daemon of daemons) await stopProcess(daemon, 'SIGTERM');
  for (const server of servers) await server.close();
  await terminateAll(workflowIds);
  await closeTestResources();
});

function run(command: string, args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => execFile(command, args, (error, stdout, stderr) =>
    resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, output: stdout + stderr })));
}

/** A port nothing listens on now: bound to port 0, read, released. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer().once('error', reject).listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** A long-running tool, its output in `log` (read when a wait times out). */
function daemon(command: string, args: string[], log: string): ChildProcess {
  const fd = openSync(log, 'a');
  try {
    const child = spawn(command, args, { stdio: ['ignore', fd, fd] });
    daemons.push(child);
    return child;
  } finally {
    closeSync(fd);
  }
}

/** The netpulse series of a /metrics text (not the process's default metrics), by name and labels. */
function netpulseSeries(text: string, family: RegExp): Record<string, number> {
  return Object.fromEntries(text.split('\n').filter((line) => family.test(line)).map((line) => {
    const space = line.lastIndexOf(' ');
    return [line.slice(0, space), Number(line.slice(space + 1))];
  }));
}

/** A dashboard served on a free port, closed after the file. */
async function serve(app: FastifyInstance): Promise<string> {
  servers.push(app);
  return app.listen({ host: '127.0.0.1', port: 0 });
}

/** GET /metrics as Prometheus sends it (light-my-request's inject does not load under jest). */
async function scrape(base: string): Promise<{ status: number; contentType: string; body: string }> {
  const response = await fetch(`${base}/metrics`);
  return { status: response.status, contentType: String(response.headers.get('content-type')), body: await response.text() };
}

/** What gold says, per server, as the metrics should: read by SQL from the lake's current tables. */
async function expectedServerSeries(lake: LakeConfig): Promise<Record<string, number>> {
  const rows = await sqlRows<Record<string, string | number | boolean | null>>(`
    SELECT l.servidor, l.utilisation_pct, l.devices_connected, l.mbps_in_use, l.capacity_mbps, l.over_capacity_now, l.needs_upgrade,
           f.forecast, f.days_until_full, f.trend_pct_per_day,
           coalesce((SELECT max(heavy_on_server) FROM gold.heavy_clients h WHERE h.servidor = l.servidor), 0) AS heavy
    FROM gold.server_load l LEFT JOIN gold.capacity_forecast f USING (servidor)`, lake);
  const series: Record<string, number> = {};
  for (const row of rows) {
    const put = (name: string, value: unknown) => {
      if (value !== null) series[`netpulse_server_${name}{server="${row.servidor}"}`] = Number(value);
    };
    put('utilisation_percent', row.utilisation_pct);
    put('devices_connected', row.devices_connected);
    put('bandwidth_in_use_mbps', row.mbps_in_use);
    put('capacity_mbps', row.capacity_mbps);
    put('over_capacity', row.over_capacity_now);
    put('needs_upgrade', row.needs_upgrade);
    put('days_until_full', ['forecast', 'full'].includes(String(row.forecast)) ? row.days_until_full : null);
    put('trend_percent_per_day', row.trend_pct_per_day);
    put('heavy_clients', row.heavy);
  }
  return series;
}

/** Audit rows of four throttles: one waiting 45 minutes, one waiting 10, one in force, one failed. */
async function auditThrottles(lake: LakeConfig): Promise<void> {
  const transitions: [workflow: string, seq: number, minutesAgo: number, transition: string, state: string][] = [
    ['throttle-a', 1, 45, 'proposed', 'proposed'],
    ['throttle-b', 1, 10, 'proposed', 'proposed'],
    ['throttle-c', 1, 30, 'proposed', 'proposed'], ['throttle-c', 2, 29, 'approved', 'approved'],
    ['throttle-c', 3, 28, 'applied', 'applied'], ['throttle-c', 4, 27, 'verified', 'in force'],
    ['throttle-d', 1, 20, 'proposed', 'proposed'], ['throttle-d', 2, 19, 'failed', 'failed'],
  ];
  const values = transitions.map(([workflow, seq, minutesAgo, transition, state]) =>
    `(current_timestamp - INTERVAL ${minutesAgo} MINUTE, '${workflow}', ${seq}, '${workflow}', '${transition}', '${state}')`);
  await withLake(lake, async (db) => {
    await db.run('CREATE SCHEMA IF NOT EXISTS actions');
    await db.run(readFileSync(path.join(__dirname, '..', 'sql', 'actions', 'throttle_audit.sql'), 'utf8'));
    await db.run(`INSERT INTO actions.throttle_audit (happened_at, workflow_id, episode, seq, client, ip, dispositivo, transition, state, actor)
      SELECT happened_at, workflow_id, workflow_id, seq, client, '10.9.9.9', 'Computador', transition, state, 'policy'
      FROM (VALUES ${values.join(', ')}) AS t(happened_at, workflow_id, seq, client, transition, state)`);
  });
}

test('promtool accepts the shipped rules and example configurations, amtool the Alertmanager example', async () => {
  expect(await run('promtool', ['check', 'rules', RULES])).toEqual({ code: 0, output: expect.stringContaining(`SUCCESS: ${SHIPPED_ALERTS.length} rules found`) });
  expect(await run('promtool', ['check', 'config', path.join(ALERTS, 'prometheus.example.yml')])).toEqual({ code: 0, output: expect.stringContaining('SUCCESS') });
  expect(await run('amtool', ['check-config', path.join(ALERTS, 'alertmanager.example.yml')])).toEqual({ code: 0, output: expect.stringContaining('SUCCESS') });
});

test('a server over capacity is on /metrics as gold says, and the shipped rule pages the webhook through Prometheus and Alertmanager', async () => {
  const { lake, sources, workflowIdPrefix, ids, taskQueue, clients } = await overCapacityLake('alerts');
  workflowIds.push(...ids);
  const dashboard = await serve(await buildDashboard({ lake }));

  // Before any throttle: no throttle series; the servers as gold has them.
  const before = await scrape(dashboard);
  expect(before).toEqual({ status: 200, contentType: expect.stringContaining('text/plain'), body: expect.any(String) });
  expect(netpulseSeries(before.body, /^netpulse_lake_readable /)).toEqual({ netpulse_lake_readable: 1 });
  expect(before.body).not.toMatch(/^netpulse_throttle/m);
  const servedServers = netpulseSeries(before.body, /^netpulse_server_/);
  expect(servedServers).toEqual(await expectedServerSeries(lake));
  expect(servedServers['netpulse_server_over_capacity{server="srv-over"}']).toBe(1);
  const [{ age }] = await sqlRows<{ age: number }>(`SELECT epoch(current_timestamp) - epoch(max(snapshot_time)) AS age
    FROM ${LAKE}.snapshots() WHERE commit_message LIKE 'REFRESH gold:%'`, lake);
  expect(Math.abs(netpulseSeries(before.body, /^netpulse_gold_refresh_age_seconds /).netpulse_gold_refresh_age_seconds - age)).toBeLessThan(5);
  // Customer data stays in the lake.
  for (const [nome, ip] of clients) expect({ nome, ip, inMetrics: before.body.includes(nome) || before.body.includes(ip) }).toEqual({ nome, ip, inMetrics: false });

  // Throttles audited: each state counted from its workflow's latest row, and the oldest waiting proposal's age.
  await auditThrottles(lake);
  const withThrottles = (await scrape(dashboard)).body;
  const states = await sqlRows<{ state: string; n: number }>(`SELECT state, count(*)::INTEGER AS n FROM
    (FROM actions.throttle_audit QUALIFY row_number() OVER (PARTITION BY client ORDER BY happened_at DESC, seq DESC) = 1) GROUP BY state`, lake);
  expect(netpulseSeries(withThrottles, /^netpulse_throttles\{/)).toEqual({
    ...Object.fromEntries(['proposed', 'approved', 'applied', 'in force', 'lifted', 'withdrawn', 'rejected', 'failed'].map((s) => [`netpulse_throttles{state="${s}"}`, 0])),
    ...Object.fromEntries(states.map((s) => [`netpulse_throttles{state="${s.state}"}`, s.n])),
  });
  expect(states).toHaveLength(3);
  const oldest = netpulseSeries(withThrottles, /^netpulse_throttle_oldest_proposal_age_seconds /).netpulse_throttle_oldest_proposal_age_seconds;
  expect(Math.abs(oldest - 45 * 60)).toBeLessThan(10);

  // With a Temporal client, the owners are counted by how they answer (a worker polls their queue).
  const withOwners = await serve(await buildDashboard({ lake, sources, workflowIdPrefix, temporal: testClient }));
  const owners = await withWorker(async () => (await scrape(withOwners)).body, { taskQueue, deps: { lake } });
  expect(netpulseSeries(owners, /^netpulse_owners\{/)).toEqual({
    'netpulse_owners{answer="answering"}': ids.length, 'netpulse_owners{answer="parked"}': 0,
    'netpulse_owners{answer="not started"}': 0, 'netpulse_owners{answer="not answering"}': 0,
  });

  // The shipped rules, each `for:` at 0s: the same alerts, firing at their first evaluation.
  const dir = tempDir('alerts');
  const shipped = readFileSync(RULES, 'utf8');
  const testRules = shipped.replace(/^(\s+for:\s*)\S+/gm, '$10s');
  const alertNames = (rules: string) => [...rules.matchAll(/^\s+- alert:\s*(\S+)/gm)].map((m) => m[1]);
  expect(alertNames(shipped)).toEqual(SHIPPED_ALERTS);
  expect(alertNames(testRules)).toEqual(SHIPPED_ALERTS);
  expect(testRules.match(/^\s+for:\s*(\S+)/gm)?.map((f) => f.trim())).toEqual(SHIPPED_ALERTS.map(() => 'for: 0s'));
  writeFileSync(path.join(dir, 'netpulse.rules.yml'), testRules);
  expect((await run('promtool', ['check', 'rules', path.join(dir, 'netpulse.rules.yml')])).code).toBe(0);

  // The webhook: every alert Alertmanager posts.
  const received: { status: string; labels: Record<string, string>; annotations: Record<string, string> }[] = [];
  const webhook = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk)).on('end', () => {
      if (request.method === 'POST') received.push(...JSON.parse(body).alerts);
      response.end();
    });
  });
  servers.push(webhook);
  await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
  const webhookPort = (webhook.address() as net.AddressInfo).port;

  const [alertmanagerPort, prometheusPort] = [await freePort(), await freePort()];
  // JSON is YAML: the configurations are written as JSON.
  writeFileSync(path.join(dir, 'alertmanager.yml'), JSON.stringify({
    route: { receiver: 'test', group_by: ['alertname', 'server'], group_wait: '0s', group_interval: '1s', repeat_interval: '1h' },
    receivers: [{ name: 'test', webhook_configs: [{ url: `http://127.0.0.1:${webhookPort}/` }] }],
  }));
  writeFileSync(path.join(dir, 'prometheus.yml'), JSON.stringify({
    global: { scrape_interval: '1s', evaluation_interval: '1s' },
    rule_files: [path.join(dir, 'netpulse.rules.yml')],
    alerting: { alertmanagers: [{ static_configs: [{ targets: [`127.0.0.1:${alertmanagerPort}`] }] }] },
    scrape_configs: [{ job_name: 'netpulse-dashboard', static_configs: [{ targets: [new URL(dashboard).host] }] }],
  }));
  const log = path.join(dir, 'daemons.log');
  daemon('/usr/bin/prometheus-alertmanager', [`--config.file=${path.join(dir, 'alertmanager.yml')}`, `--storage.path=${path.join(dir, 'alertmanager')}`,
    `--web.listen-address=127.0.0.1:${alertmanagerPort}`, '--cluster.listen-address='], log);
  daemon('/usr/bin/prometheus', [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'prometheus')}`,
    `--web.listen-address=127.0.0.1:${prometheusPort}`], log);

  const firing = (alertname: string) => received.filter((a) => a.labels.alertname === alertname && a.status === 'firing');
  try {
    await waitFor('ServerOverCapacity and HeavyClientUnthrottled at the webhook',
      () => firing('ServerOverCapacity').length > 0 && firing('HeavyClientUnthrottled').length > 0, 90_000);
  } catch (error) {
    throw new Error(`${(error as Error).message}; received ${JSON.stringify(received)}; the daemons said:\n${readFileSync(log, 'utf8').slice(-4000)}`);
  }
  expect(firing('ServerOverCapacity').map((a) => ({ server: a.labels.server, severity: a.labels.severity, summary: a.annotations.summary })))
    .toEqual(firing('ServerOverCapacity').map(() => ({ server: 'srv-over', severity: 'critical', summary: expect.stringContaining('srv-over') })));
  // Nothing else is wrong with this lake: only these two alerts fire.
  expect([...new Set(received.map((a) => a.labels.alertname))].sort()).toEqual(['HeavyClientUnthrottled', 'ServerOverCapacity']);
});

test('a lake that cannot be read is a gauge at 0 on a 200, not a failed scrape', async () => {
  const dir = tempDir('unreadable');
  const port = await freePort(); // nothing listens there: the catalog connection is refused
  const lake: LakeConfig = { catalog: `host=127.0.0.1 port=${port} dbname=netpulse user=netpulse_reader connect_timeout=5`, catalogSchema: 'nowhere', dataPath: path.join(dir, 'lake') };
  const dashboard = await serve(await buildDashboard({ lake }));
  const logged: string[] = [];
  const consoleError = jest.spyOn(console, 'error').mockImplementation((line: string) => void logged.push(line));
  try {
    const [first, second] = [await scrape(dashboard), await scrape(dashboard)];
    for (const response of [first, second]) {
      expect(response.status).toBe(200);
      expect(netpulseSeries(response.body, /^netpulse_(?!dashboard_)/)).toEqual({ netpulse_lake_readable: 0 });
    }
  } finally {
    consoleError.mockRestore();
  }
  // Why, once for the two scrapes, naming the catalog.
  expect(logged).toEqual([expect.stringMatching(new RegExp(`^metrics: cannot read the lake: .*127\\.0\\.0\\.1.*${port}`))]);
});
