// Throttling heavy clients end to end: gold names the client, the controller proposes, an operator
// or the policy approves, the adapter applies and reads back, the throttle lifts; every transition
// in the audit once. Real Temporal, real lake, a real HTTP network controller for the webhook.
import { chromium, type Browser } from 'playwright-core';
import os from 'node:os';
import path from 'node:path';
import { buildDashboard } from '../client/dashboard';
import { CHROMIUM, CHROMIUM_ARGS } from './browser';
import { decideUpdate, setPolicyUpdate } from '../workflows/throttle';
import type { EnforcementSettings } from '../rules/throttle';
import { cli, closeTestResources, lakeEnv, landingFile, sqlRows, tempDir, TEST_OUTPUT, terminateAll, testClient, testLake, uniqueId, waitFor, withWorker } from './helpers';
import { audit, lakeWithHeavyClients, networkController, reaches, stateOf, T, updateRefusal, withController } from './throttle-fixtures';

afterAll(closeTestResources);

test('an operator approves a proposed throttle: the webhook applies it once despite a 503, reads it back, and the lift removes it; the audit has each transition once', async () => {
  const prefix = '10.8.1';
  const { lake, landing, refresh } = await lakeWithHeavyClients('throttleop', prefix);
  const controller = await networkController();
  const heavy = `${prefix}.10/Computador`;
  const workflowId = `throttle-${prefix}.10-Computador`;
  const enforcement: EnforcementSettings = { adapter: 'webhook', url: controller.url, timeoutMs: 2000 };
  try {
    await withWorker(async ({ client, taskQueue }) => {
      await refresh(client, taskQueue);
      expect(await sqlRows(`SELECT ip, velocidade_mbps, throttle_to_mbps FROM gold.heavy_clients ORDER BY velocidade_mbps DESC`, lake)).toEqual([
        { ip: `${prefix}.10`, velocidade_mbps: 1000, throttle_to_mbps: 100 },
        { ip: `${prefix}.11`, velocidade_mbps: 500, throttle_to_mbps: 100 },
      ]);
      await withController(client, taskQueue, { proposePerServer: 1 }, async () => {
        await reaches(client, workflowId, 'proposed');
        const proposed = (await stateOf(client, workflowId))!;
        expect(proposed).toMatchObject({ client: heavy, limitMbps: 100, servidor: 'srv-a',
          proposedEvidence: { planMbps: 1000, serverMedianMbps: 35, timesMedian: 28.57, serverUtilisationPct: 171, heavyOnServer: 2 } });
        // Only the server's heaviest is proposed (proposePerServer 1).
        expect(await stateOf(client, `throttle-${prefix}.11-Celular`)).toBeUndefined();
        // Nothing is applied without a decision.
        await new Promise((resolve) => setTimeout(resolve, 2500));
        expect((await stateOf(client, workflowId))!.state).toBe('proposed');
        expect(controller.calls).toEqual([]);

        const handle = client.workflow.getHandle(workflowId);
        expect(await updateRefusal(handle.executeUpdate(decideUpdate, { args: [{ action: 'lift', actor: 'ana', reason: '' }] }))).toBe('the throttle is proposed: it accepts approve or reject, not lift');
        expect(await updateRefusal(handle.executeUpdate(decideUpdate, { args: [{ action: 'approve', actor: 'ana; DROP TABLE x', reason: '' }] }))).toMatch(/^decision: actor: .*letters, digits/);
        const approved = await handle.executeUpdate(decideUpdate, { args: [{ action: 'approve', actor: 'ana', reason: 'fair share for srv-a' }] });
        expect(approved.transitions.at(-1)).toMatchObject({ transition: 'approved', actor: 'ana', reason: 'fair share for srv-a' });
        await reaches(client, workflowId, 'in force');
        expect(controller.limits.get(heavy)).toBe(100);
        // The 503 was retried with the same idempotency key: one limit, installed once.
        const puts = controller.calls.filter((c) => c.method === 'PUT');
        expect(puts).toHaveLength(2);
        expect(new Set(puts.map((c) => c.key)).size).toBe(1);

        const lifted = await handle.executeUpdate(decideUpdate, { args: [{ action: 'lift', actor: 'ana', reason: 'talked to the client' }] });
        expect(lifted.state).toBe('lifted');
        expect(controller.limits.has(heavy)).toBe(false);
        await expect(handle.result()).resolves.toMatchObject({ state: 'lifted' });
      });
      expect(await audit(lake, heavy)).toEqual([
        { seq: '1', transition: 'proposed', state: 'proposed', actor: 'netpulse', limit_mbps: '100', adapter: null },
        { seq: '2', transition: 'approved', state: 'approved', actor: 'ana', limit_mbps: '100', adapter: null },
        { seq: '3', transition: 'applied', state: 'applied', actor: 'netpulse', limit_mbps: '100', adapter: 'webhook' },
        { seq: '4', transition: 'verified', state: 'in force', actor: 'netpulse', limit_mbps: '100', adapter: 'webhook' },
        { seq: '5', transition: 'lifted', state: 'lifted', actor: 'ana', limit_mbps: '100', adapter: 'webhook' },
      ]);
    }, { deps: { lake, landingDir: landing, enforcement } });
  } finally {
    await controller.close();
  }
});

test('under an automatic policy the heaviest client is throttled without an operator, at most maxPerServer per server, and lifted once gold stops listing it', async () => {
  const prefix = '10.8.2';
  const { lake, landing, refresh } = await lakeWithHeavyClients('throttleauto', prefix);
  const first = `throttle-${prefix}.10-Computador`;
  const second = `throttle-${prefix}.11-Celular`;
  await withWorker(async ({ client, taskQueue }) => {
    await refresh(client, taskQueue);
    await withController(client, taskQueue, { proposePerServer: 2 }, async (controllerId) => {
      await reaches(client, first, 'proposed');
      await reaches(client, second, 'proposed');
      // The operator turns the policy on: heavy since its proposal (0 min), server ≥ 70 %, one per server.
      const policy = await client.workflow.getHandle(controllerId).executeUpdate(setPolicyUpdate, {
        args: [{ auto: true, minHeavyMinutes: 0, minServerUtilisationPct: 70, maxPerServer: 1, liftAfterMinutes: 0 }],
      });
      expect(policy).toMatchObject({ auto: true, maxPerServer: 1, proposePerServer: 2 });
      await reaches(client, first, 'in force');
      const view = (await stateOf(client, first))!;
      expect(view.transitions.find((t) => t.transition === 'approved')).toMatchObject({ actor: 'policy', reason: expect.stringMatching(/^policy: heavy since .* on a server at 171\.0 % \(70 % or more\), client 1 of at most 1 on srv-a$/) });
      expect(view.adapter).toBe('dryrun');
      // The second stays a proposal: srv-a has its one throttle.
      await new Promise((resolve) => setTimeout(resolve, 2500));
      expect((await stateOf(client, second))!.state).toBe('proposed');

      // The heavy client disconnects: gold stops listing it, and its throttle lifts itself (liftAfterMinutes 0).
      await landingFile(landing, 'Computador/Desconectado', 'gone', [['Pesado', `${prefix}.10`, `${T}30:00`, 'Computador', 1000, 'Desconectado', 'srv-a']]);
      await refresh(client, taskQueue);
      await reaches(client, first, 'lifted');
      expect((await stateOf(client, first))!.transitions.at(-1)).toMatchObject({ actor: 'netpulse', reason: expect.stringMatching(/^not heavy since .* \(liftAfterMinutes 0\)$/) });
      // With a slot free on srv-a (now at 71 %), the policy approves the next heaviest.
      await reaches(client, second, 'in force');
    });
  }, { deps: { lake, landingDir: landing, enforcement: { adapter: 'dryrun' } } });
  const rows = await sqlRows<{ client: string; transitions: string }>(`SELECT client, string_agg(transition, ',' ORDER BY seq) AS transitions
    FROM actions.throttle_audit GROUP BY client ORDER BY client`, lake);
  expect(rows).toEqual([
    { client: `${prefix}.10/Computador`, transitions: 'proposed,approved,applied,verified,lifted' },
    { client: `${prefix}.11/Celular`, transitions: 'proposed,approved,applied,verified' },
  ]);
  await terminateAll([second]);
});

test('the dashboard lists proposals and throttles in force; approve and lift from the page; the API takes only those decisions, validated, from this machine', async () => {
  const prefix = '10.8.3';
  const { lake, landing, refresh, sources, workflowIdPrefix } = await lakeWithHeavyClients('throttlepage', prefix);
  const workflowId = `throttle-${prefix}.10-Computador`;
  let browser: Browser | undefined;
  await withWorker(async ({ client, taskQueue }) => {
    await refresh(client, taskQueue);
    const app = await buildDashboard({ lake, sources, workflowIdPrefix, temporal: async () => client });
    try {
      await withController(client, taskQueue, { proposePerServer: 2 }, async () => {
        await reaches(client, workflowId, 'proposed');
        await reaches(client, `throttle-${prefix}.11-Celular`, 'proposed');
        const url = await app.listen({ host: '127.0.0.1', port: 0 });
        const post = (body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
          fetch(`${url}/api/throttles/decide`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
        // Hostile or wrong requests: refused with a reason, and the throttles unchanged.
        expect((await post({ client: `${prefix}.10/Computador`, action: 'delete' })).status).toBe(400);
        expect(await (await post({ client: `${prefix}.10/Computador; rm -rf /`, action: 'approve' })).json()).toMatchObject({ error: expect.stringMatching(/^bad decision: client: a client as <ip>\/<device>/) });
        expect((await post({ client: `${prefix}.10/Computador`, action: 'approve', actor: 'someone else' })).status).toBe(400);
        expect((await post('client=x&action=approve', { 'content-type': 'application/x-www-form-urlencoded' })).status).toBe(415);
        expect((await post({ client: `${prefix}.10/Computador`, action: 'approve' }, { 'content-type': 'application/json', origin: 'http://evil.example' })).status).toBe(403);
        expect(await (await post({ client: `${prefix}.10/Computador`, action: 'lift' })).json()).toEqual({ error: `lift ${prefix}.10/Computador: the throttle is proposed: it accepts approve or reject, not lift` });
        expect((await stateOf(client, workflowId))!.state).toBe('proposed');

        browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
        const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
        await page.goto(url);
        const rows = page.locator('[data-testid="throttles"] tbody tr');
        await page.waitForFunction(`document.querySelectorAll('[data-testid="throttles"] tbody tr').length === 2`);
        expect(await page.evaluate(`[...document.querySelectorAll('[data-testid="throttles"] tbody tr')].map((tr) => [...tr.cells].slice(0, 5).map((c) => c.textContent))`)).toEqual([
          [`${prefix}.10/Computador`, 'srv-a', 'proposed', '1 Gbps', '100 Mbps'],
          [`${prefix}.11/Celular`, 'srv-a', 'proposed', '500 Mbps', '100 Mbps'],
        ]);
        await page.fill('[data-testid="throttle-reason"]', 'peak hour on srv-a');
        const row = rows.filter({ hasText: `${prefix}.10/Computador` });
        await row.locator('button[data-action="approve"]').click();
        // The page says what the decision did, and the throttle goes on to be in force.
        await page.waitForFunction(`document.querySelector('[data-testid="throttle-message"]').textContent === '${prefix}.10/Computador: approved'`, undefined, { timeout: 30_000 });
        await page.waitForFunction(`[...document.querySelectorAll('[data-testid="throttles"] tbody tr')].some((tr) => tr.cells[0].textContent === '${prefix}.10/Computador' && tr.cells[2].textContent === 'in force')`, undefined, { timeout: 30_000 });
        const screenshot = path.join(TEST_OUTPUT, 'throttle-panel.png');
        await page.locator('[data-testid="throttle-panel"]').screenshot({ path: screenshot });
        expect(await audit(lake, `${prefix}.10/Computador`)).toEqual(expect.arrayContaining([
          expect.objectContaining({ transition: 'approved', actor: 'dashboard@127.0.0.1' }),
        ]));
        expect((await sqlRows<{ reason: string }>(`SELECT reason FROM actions.throttle_audit WHERE client = '${prefix}.10/Computador' AND transition = 'approved'`, lake))[0].reason).toBe('peak hour on srv-a');
        await row.locator('button[data-action="lift"]').click();
        await reaches(client, workflowId, 'lifted');
        // Throttles that ended stay on the panel, under the open ones, without actions.
        await page.waitForFunction(`[...document.querySelectorAll('[data-testid="throttles"] tbody tr')].map((tr) => tr.cells[2].textContent + ' ' + tr.cells[8].textContent).join() === 'proposed approvereject,lifted '`, undefined, { timeout: 30_000 });
      });
    } finally {
      await browser?.close();
      await app.close();
      await terminateAll([`throttle-${prefix}.11-Celular`]);
    }
  }, { deps: { lake, landingDir: landing, enforcement: { adapter: 'dryrun' } } });
});

test('netpulse throttle: start the controller, set the policy, list, approve and lift from the CLI, with clear errors for bad input', async () => {
  const prefix = '10.8.5';
  const { lake, landing, refresh } = await lakeWithHeavyClients('throttlecli', prefix);
  const taskQueue = uniqueId('tq-throttle-cli');
  const env = { TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS!, NETPULSE_TASK_QUEUE: taskQueue, NETPULSE_LANDING_DIR: landing, ...lakeEnv(lake) };
  const heavy = `${prefix}.10/Computador`;
  await withWorker(async ({ client }) => {
    await refresh(client, taskQueue);
    expect(await cli(['throttle', 'policy'], env)).toMatchObject({ code: 1, stderr: 'error: no throttle controller is running (throttle-controller); start it with: netpulse throttle start\n' });
    expect(await cli(['throttle', 'start', '--observe-seconds', '1'], env)).toMatchObject({ code: 0, stdout: expect.stringMatching(/^throttle controller started: throttle-controller/) });
    expect(await cli(['throttle', 'start'], env)).toMatchObject({ code: 0, stdout: 'throttle controller already running: throttle-controller\n' });
    try {
      expect(await cli(['throttle', 'policy', '--max-per-server', 'lots'], env)).toMatchObject({ code: 2, stderr: 'error: --max-per-server: "lots" is not a number\n' });
      expect(await cli(['throttle', 'policy', '--auto', 'maybe'], env)).toMatchObject({ code: 2 });
      const policy = await cli(['throttle', 'policy', '--propose-per-server', '1', '--json'], env);
      expect(JSON.parse(policy.stdout)).toMatchObject({ auto: false, proposePerServer: 1, maxPerServer: 3 });
      const listed = await waitFor('a proposal in the list', async () => {
        const out = await cli(['throttle', 'list', '--json'], env);
        const rows = JSON.parse(out.stdout) as { client: string; state: string; limit_mbps: number; plan_mbps: number }[];
        return rows.length === 2 ? rows : undefined;
      });
      // The heaviest first; the default policy proposes each server's three heaviest.
      expect(listed).toEqual([
        expect.objectContaining({ client: heavy, state: 'proposed', limit_mbps: 100, plan_mbps: 1000, servidor: 'srv-a' }),
        expect.objectContaining({ client: `${prefix}.11/Celular`, state: 'proposed', limit_mbps: 100, plan_mbps: 500, servidor: 'srv-a' }),
      ]);
      expect(await cli(['throttle', 'approve', '10.8.5.10'], env)).toMatchObject({ code: 2, stderr: expect.stringMatching(/^error: "10\.8\.5\.10" is not a client: .*<ip>\/<device>/) });
      expect(await cli(['throttle', 'lift', heavy], env)).toMatchObject({ code: 2, stderr: `error: lift ${heavy}: the throttle is proposed: it accepts approve or reject, not lift\n` });
      expect(await cli(['throttle', 'approve', `${prefix}.99/Celular`], env)).toMatchObject({ code: 2, stderr: `error: ${prefix}.99/Celular has no throttle open (netpulse throttle list)\n` });
      const approved = await cli(['throttle', 'approve', heavy, '--actor', 'ana', '--reason', 'peak hour'], env);
      expect(approved).toMatchObject({ code: 0, stdout: expect.stringMatching(new RegExp(`^${heavy}: approved \\(approved by ana at \\S+: peak hour\\)\\n$`)) });
      await reaches(client, `throttle-${prefix}.10-Computador`, 'in force');
      expect((await cli(['throttle', 'lift', heavy, '--actor', 'ana'], env)).stdout).toMatch(new RegExp(`^${heavy}: lifted \\(lifted by ana at \\S+: lifted by the operator\\)`));
      const trail = JSON.parse((await cli(['throttle', 'list', '--client', heavy, '--json'], env)).stdout) as { transition: string; actor: string }[];
      expect(trail.map((t) => `${t.transition} ${t.actor}`)).toEqual(['proposed netpulse', 'approved ana', 'applied netpulse', 'verified netpulse', 'lifted ana']);
      expect((await cli(['throttle', 'list'], env)).stdout).toMatch(new RegExp(`^client +workflow_id .*\n[- ]+\n${prefix}\.11/Celular +throttle-${prefix}\.11-Celular +srv-a +proposed .*\n$`));
    } finally {
      await terminateAll(['throttle-controller', `throttle-${prefix}.10-Computador`, `throttle-${prefix}.11-Celular`]);
    }
  }, { taskQueue, deps: { lake, landingDir: landing, enforcement: { adapter: 'dryrun' } } });
});

test('a decision from another machine is refused unless the dashboard runs with --remote-actions', async () => {
  // This machine's own non-loopback address: a request to it comes from it, not from 127.0.0.1.
  const external = Object.values(os.networkInterfaces()).flat().find((a) => a?.family === 'IPv4' && !a.internal)?.address;
  if (!external) throw new Error('no non-loopback IPv4 interface on this machine to send a request from');
  const lake = testLake(tempDir('remote-actions'));
  const decision = { client: '10.8.6.10/Computador', action: 'approve', reason: '' };
  for (const remoteActions of [false, true]) {
    const app = await buildDashboard({ lake, remoteActions, temporal: testClient });
    try {
      const url = (await app.listen({ host: external, port: 0 })).replace('127.0.0.1', external);
      const response = await fetch(`${url}/api/throttles/decide`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(decision) });
      const body = await response.json() as { error: string };
      if (remoteActions) expect({ status: response.status, body }).toEqual({ status: 409, body: { error: '10.8.6.10/Computador has no throttle open (netpulse throttle list)' } });
      else expect({ status: response.status, body }).toEqual({ status: 403, body: { error: 'throttle actions are accepted from this machine only (netpulse dashboard --remote-actions to change that)' } });
    } finally {
      await app.close();
    }
  }
});
