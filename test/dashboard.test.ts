// The dashboard in a real browser (Debian's chromium, driven by playwright-core) against a lake
// the real pipeline filled, and its API against hostile query strings.
import { chromium, type Browser, type Page } from 'playwright-core';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { buildDashboard } from '../client/dashboard';
import { LAKE, type LakeConfig } from '../lake/catalog';
import { generatorWorkflow } from '../workflows/generator';
import { medallionPipeline } from '../workflows/pipeline';
import { CHROMIUM, CHROMIUM_ARGS } from './browser';
import { closeTestResources, overCapacityLake, sqlRows, TEST_OUTPUT, tempDir, terminateAll, testClient, testLake, testPipeline, uniqueId, withWorker } from './helpers';

const CLI = path.join(__dirname, '..', 'dist', 'client', 'cli.js');
const processes: ChildProcess[] = [];

afterAll(async () => {
  for (const child of processes) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await closeTestResources();
});

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

/** `netpulse dashboard` as a user starts it, on a free port, stopped with SIGTERM once it says where it listens. */
function dashboardProcess(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'dashboard', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    processes.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      if (stdout.includes('\n')) child.kill('SIGTERM');
    });
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Everything wider than its box at a window size: the page itself, or a header, tile or panel whose content is clipped or scrolls. */
async function sideways(page: Page, width: number, height: number): Promise<string[]> {
  await page.setViewportSize({ width, height });
  // Chart.js resizes its canvases on the next animation frame.
  await page.evaluate('new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))');
  return page.evaluate(`[document.documentElement, ...document.querySelectorAll('header, .tile, .panel')]
    .filter((box) => box.scrollWidth > box.clientWidth)
    .map((box) => \`${width}x${height}: \${box === document.documentElement ? 'page' : box.querySelector('h1, h2')?.textContent} is \${box.scrollWidth} px wide in \${box.clientWidth}\`)`);
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
      // Nothing sticks out sideways at common window widths, widest first (canvases must shrink too).
      const overflow: string[] = [];
      for (const [width, height] of [[1920, 1080], [1400, 900], [1366, 768], [1280, 800], [1024, 768]]) overflow.push(...await sideways(page, width, height));
      expect(overflow).toEqual([]);
      await page.setViewportSize({ width: 1440, height: 1000 });

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
    // A well-formed as_of before the first gold refresh is not bad input: there is nothing to show, a 404.
    for (const asOf of ['1', '2000-01-01T00:00:00Z']) {
      const response = await get(base, `/api/dashboard?as_of=${asOf}`);
      expect({ asOf, status: response.status, error: JSON.parse(response.body).error })
        .toEqual({ asOf, status: 404, error: expect.stringMatching(/^no gold refresh at or before/) });
    }
    // Paths are routes, not files.
    for (const url of ['/../package.json', '/app.js/../../package.json', '/%2e%2e/config.ts', '/vendor/../../README.md']) {
      expect({ url, status: (await get(base, url)).status }).toEqual({ url, status: 404 });
    }
    expect(await lakeState()).toEqual(before);
  } finally {
    await app.close();
    await terminateAll(ids);
  }
});

test('a server over capacity now is marked apart from one needing an upgrade; equal series stay apart on the chart', async () => {
  const { lake, sources, workflowIdPrefix, ids } = await overCapacityLake('overcap');
  let browser: Browser | undefined;
  const app = await buildDashboard({ lake, sources, workflowIdPrefix });
  try {
    expect(await sqlRows('SELECT servidor, utilisation_pct, needs_upgrade, over_capacity_now FROM gold.server_load ORDER BY 1', lake)).toEqual([
      { servidor: 'srv-calm', utilisation_pct: 10, needs_upgrade: false, over_capacity_now: false },
      { servidor: 'srv-over', utilisation_pct: 111.11, needs_upgrade: false, over_capacity_now: true },
    ]);

    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(url);
    await page.waitForFunction(`document.body.dataset.version !== undefined`);
    const rows = await page.evaluate(`[...document.querySelectorAll('[data-testid="servers"] tbody tr')]
      .map((tr) => ({ server: tr.cells[0].textContent, className: tr.className, flags: tr.cells[tr.cells.length - 1].textContent }))`);
    expect(rows).toEqual([
      { server: 'srv-over', className: 'over-capacity', flags: 'over capacity now' },
      { server: 'srv-calm', className: '', flags: '' },
    ]);

    // The two equal series are both visible in the plot area (the one beneath is not covered),
    // and each line has its own colour, dash pattern and point style, as Chart.js resolved them.
    const lines = await page.evaluate(`(() => {
      const chart = Chart.getChart('events-chart');
      const ratio = chart.currentDevicePixelRatio;
      const { left, top, right, bottom } = chart.chartArea;
      const plot = chart.ctx.getImageData(left * ratio, top * ratio, (right - left) * ratio, (bottom - top) * ratio).data;
      const probe = document.createElement('canvas').getContext('2d');
      return chart.data.datasets.map((dataset, i) => {
        const line = chart.getDatasetMeta(i).dataset.options;
        probe.fillStyle = line.borderColor;
        probe.fillRect(0, 0, 1, 1);
        const [r, g, b] = probe.getImageData(0, 0, 1, 1).data;
        let pixels = 0;
        for (let p = 0; p < plot.length; p += 4) if (Math.abs(plot[p] - r) + Math.abs(plot[p + 1] - g) + Math.abs(plot[p + 2] - b) < 30) pixels++;
        return { label: dataset.label, data: dataset.data, visible: pixels > 0,
          color: line.borderColor, dash: JSON.stringify(line.borderDash), point: chart.getDatasetMeta(i).data[0].options.pointStyle };
      });
    })()`) as { label: string; data: number[]; visible: boolean; color: string; dash: string; point: string }[];
    expect(lines.map((l) => [l.label, l.visible])).toEqual([['Celular Conectado', true], ['Computador Conectado', true]]);
    expect(lines[0].data).toEqual(lines[1].data);
    for (const style of ['color', 'dash', 'point'] as const) {
      expect({ style, distinct: new Set(lines.map((l) => l[style])).size }).toEqual({ style, distinct: lines.length });
    }
  } finally {
    await browser?.close();
    await app.close();
    await terminateAll(ids);
  }
});

test('netpulse dashboard starts and stops on SIGTERM without a word on stderr (no deprecation warnings)', async () => {
  expect(await dashboardProcess()).toEqual({ code: 0, stdout: expect.stringMatching(/^dashboard: http:\/\/localhost:\d+\/ /), stderr: '' });
});
