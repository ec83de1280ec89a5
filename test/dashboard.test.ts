// The dashboard in a real browser (Debian's chromium, driven by playwright-core) against a lake
// the real pipeline filled, and its API against hostile query strings.
import { chromium, type Browser } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { buildDashboard } from '../client/dashboard';
import { LAKE, type LakeConfig } from '../lake/catalog';
import { generatorWorkflow } from '../workflows/generator';
import { medallionPipeline } from '../workflows/pipeline';
import { closeTestResources, sqlRows, TEST_OUTPUT, tempDir, terminateAll, testClient, testLake, testPipeline, uniqueId, withWorker } from './helpers';

const CHROMIUM = process.env.NETPULSE_CHROMIUM ?? '/usr/bin/chromium';
// Headless, and nothing that reaches for the network (the machine has none).
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

afterAll(closeTestResources);

function fixture(tag: string) {
  const dir = tempDir(tag);
  return { dir, landing: path.join(dir, 'landing'), lake: testLake(dir), ...testPipeline(tag) };
}

/** A GET with the path sent exactly as written (no client-side URL normalisation). */
function get(base: string, rawPath: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    http.get({ host: hostname, port, path: rawPath }, (response) => {
      let body = '';
      response.on('data', (chunk) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

const number = new Intl.NumberFormat('en-US');
const mbps = (n: number) => (n >= 1000 ? `${new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 }).format(n / 1000)} Gbps` : `${number.format(n)} Mbps`);

async function goldFigures(lake: LakeConfig) {
  const [total] = await sqlRows<{ connected: string; disconnected: string }>(`SELECT connected, disconnected FROM gold.connections_now WHERE dispositivo = 'Total'`, lake);
  const [bandwidth] = await sqlRows<{ mbps: string }>(`SELECT mbps_in_use AS mbps FROM gold.bandwidth_now WHERE dispositivo = 'Total'`, lake);
  const servers = await sqlRows<{ servidor: string; needs_upgrade: boolean }>('SELECT servidor, needs_upgrade FROM gold.server_load', lake);
  const heavy = await sqlRows('SELECT ip FROM gold.heavy_clients', lake);
  const [{ n: heavyTotal }] = await sqlRows<{ n: string }>('SELECT coalesce(sum(heavy_on_server), 0) AS n FROM (SELECT DISTINCT servidor, heavy_on_server FROM gold.heavy_clients)', lake);
  const [{ v }] = await sqlRows<{ v: string }>(`SELECT max(snapshot_id) AS v FROM ${LAKE}.snapshots() WHERE commit_message LIKE 'REFRESH gold:%'`, lake);
  return {
    version: v, connected: number.format(Number(total.connected)), disconnected: number.format(Number(total.disconnected)),
    bandwidth: mbps(Number(bandwidth.mbps)), servers: servers.length, upgrades: servers.filter((s) => s.needs_upgrade).length,
    heavy: Math.min(15, heavy.length), heavyCount: Number(heavyTotal) > 15 ? `(top 15 of ${number.format(Number(heavyTotal))})` : `(${heavyTotal})`,
  };
}

test('the page shows what gold holds, refreshes itself when new files land, and takes ?as_of=', async () => {
  const { landing, lake, sources, workflowIdPrefix, ids } = fixture('dash');
  const taskQueue = uniqueId('tq-dash');
  let browser: Browser | undefined;
  const app = await buildDashboard({ lake, sources, workflowIdPrefix, temporal: testClient });
  try {
    await withWorker(async ({ client }) => {
      const generate = (ticks: number, startTime: string) => client.workflow.execute(generatorWorkflow, {
        taskQueue, workflowId: uniqueId('gen'),
        args: [{ mode: 'population', population: { clients: 300, servers: 4 }, ticks, intervalSeconds: 0, seed: 11, startTime, landingPath: landing }],
      });
      const pass = () => client.workflow.execute(medallionPipeline, {
        taskQueue, workflowId: uniqueId('pipeline-dash'),
        args: [{ sources, landingPath: landing, workflowIdPrefix, gold: { options: { refreshIntervalSeconds: 0, defaultServerCapacityMbps: 4000, upgradeMinSamples: 1 } } }],
      });
      await generate(3, '2026-06-01T10:00:00Z');
      await pass();
      const first = await goldFigures(lake);

      const url = await app.listen({ host: '127.0.0.1', port: 0 });
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
      const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
      await page.goto(url);
      await page.waitForFunction(`document.body.dataset.version === ${JSON.stringify(first.version)}`);
      const shown = async () => ({
        version: await page.getAttribute('body', 'data-version'),
        connected: await page.textContent('[data-testid="connected-total"]'),
        disconnected: await page.textContent('[data-testid="disconnected-total"]'),
        bandwidth: await page.textContent('[data-testid="bandwidth-now"]'),
        servers: await page.locator('[data-testid="servers"] tbody tr').count(),
        upgrades: await page.locator('[data-testid="servers"] tbody tr.upgrade').count(),
        heavy: await page.locator('[data-testid="heavy-clients"] tbody tr').count(),
        heavyCount: await page.textContent('[data-testid="heavy-count"]'),
      });
      expect(await shown()).toEqual(first);
      expect(first.servers).toBe(4);
      // Each owner workflow is linked to its page in the Temporal Web UI.
      const links = await page.locator('[data-testid="pipeline"] a').evaluateAll((as) => as.map((a) => (a as unknown as { href: string }).href));
      expect(links).toEqual(ids.map((id) => expect.stringContaining(`/workflows/${id}`)));
      mkdirSync(TEST_OUTPUT, { recursive: true });
      await page.screenshot({ path: path.join(TEST_OUTPUT, 'dashboard.png'), fullPage: true });

      // New files land and the pipeline runs: the open page follows by itself.
      await generate(2, '2026-06-01T10:05:00Z');
      await pass();
      const second = await goldFigures(lake);
      expect(second.version).not.toBe(first.version);
      await page.waitForFunction(`document.body.dataset.version === ${JSON.stringify(second.version)}`, undefined, { timeout: 30_000 });
      expect(await shown()).toEqual(second);

      // ?as_of= takes the page back to the first refresh.
      await page.goto(`${url}/?as_of=${first.version}`);
      await page.waitForFunction(`document.body.dataset.version === ${JSON.stringify(first.version)}`);
      expect(await shown()).toEqual(first);
    }, { taskQueue, deps: { lake, landingDir: landing } });
  } finally {
    await browser?.close();
    await app.close();
    await terminateAll(ids);
  }
});

test('hostile query strings get a 400 and leave the lake unchanged', async () => {
  const { landing, lake, sources, workflowIdPrefix, ids } = fixture('hostile');
  const taskQueue = uniqueId('tq-hostile');
  const app = await buildDashboard({ lake, sources, workflowIdPrefix });
  try {
    await withWorker(async ({ client }) => {
      await client.workflow.execute(generatorWorkflow, {
        taskQueue, workflowId: uniqueId('gen'), args: [{ mode: 'population', ticks: 2, intervalSeconds: 0, seed: 5, landingPath: landing }],
      });
      await client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId('pipeline-hostile'), args: [{ sources, landingPath: landing, workflowIdPrefix }] });
    }, { taskQueue, deps: { lake, landingDir: landing } });
    const lakeState = async () => ({
      snapshots: await sqlRows(`SELECT snapshot_id, commit_message FROM ${LAKE}.snapshots() ORDER BY 1`, lake),
      gold: await sqlRows('SELECT * FROM gold.connections_now ORDER BY ALL', lake),
    });
    const before = await lakeState();
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    expect((await get(base, '/api/dashboard')).status).toBe(200);
    const hostile = [
      "as_of=1'; DROP TABLE gold.connections_now; --", 'as_of=1;DELETE FROM silver.events', 'as_of=../../etc/passwd',
      'as_of=%2e%2e%2f%2e%2e%2fetc%2fpasswd', 'as_of=99999999999999999999999999', 'as_of=1e309', 'as_of=-1', 'as_of=',
      'as_of=1&as_of=2', 'as_of[]=1', 'sql=SELECT%201', 'as_of=1&table=gold.connections_now', 'as_of=%00', "as_of=2026-01-01'",
      `as_of=${'9'.repeat(5000)}`,
    ];
    for (const query of hostile) {
      const response = await get(base, `/api/dashboard?${query.replace(/ /g, '%20')}`);
      expect({ query, status: response.status }).toEqual({ query, status: 400 });
      expect(JSON.parse(response.body).error).toEqual(expect.any(String));
    }
    // A well-formed as_of outside the lake is the reader's mistake, also a 400; paths are routes, not files.
    expect((await get(base, '/api/dashboard?as_of=1')).status).toBe(400);
    for (const url of ['/../package.json', '/app.js/../../package.json', '/%2e%2e/config.ts', '/vendor/../../README.md']) {
      expect({ url, status: (await get(base, url)).status }).toEqual({ url, status: 404 });
    }
    expect(await lakeState()).toEqual(before);
  } finally {
    await app.close();
    await terminateAll(ids);
  }
});
