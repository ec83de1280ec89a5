// Shared by the throttle tests: a lake whose gold names heavy clients, a real HTTP network
// controller for the webhook adapter, and waiting on a throttle workflow's state.
import http from 'node:http';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { LakeConfig } from '../lake/catalog';
import { medallionPipeline } from '../workflows/pipeline';
import { throttleControllerWorkflow, throttleQuery, type ThrottleView } from '../workflows/throttle';
import type { ThrottlePolicyInput } from '../rules/throttle';
import { landingFile, type Row, sqlRows, tempDir, testLake, testPipeline, uniqueId, waitFor } from './helpers';

export const T = '2026-06-01 10:';

/** Terminates workflows a test started on the server `client` talks to (the suite's, or a test's own). */
export const terminate = (client: Client, ids: string[]) => Promise.all(ids.map((id) => client.workflow.getHandle(id).terminate('test finished').catch(() => undefined)));
/** One server: six clients on 35 Mbps plans and two far above 3× that median (105 Mbps), throttled to 100; the heaviest at <prefix>.<heavyHost>. */
export function serverRows(prefix: string, heavyHost = 10): Record<string, Row[]> {
  const calm: Row[] = Array.from({ length: 6 }, (_, i) => [`Calmo ${i}`, `${prefix}.${20 + i}`, `${T}0${i}:00`, 'Computador', 35, 'Conectado', 'srv-a']);
  return {
    'Computador/Conectado': [[`Pesado`, `${prefix}.${heavyHost}`, `${T}01:10`, 'Computador', 1000, 'Conectado', 'srv-a'], ...calm],
    'Celular/Conectado': [[`Médio`, `${prefix}.11`, `${T}01:20`, 'Celular', 500, 'Conectado', 'srv-a']],
  };
}

export async function lakeWithHeavyClients(tag: string, prefix: string, heavyHost = 10) {
  const dir = tempDir(tag);
  const landing = path.join(dir, 'landing');
  const lake = testLake(dir);
  const { sources, workflowIdPrefix, ids } = testPipeline(tag);
  for (const [folder, rows] of Object.entries(serverRows(prefix, heavyHost))) await landingFile(landing, folder, `${folder.replace('/', '-')}-1`, rows);
  const refresh = async (client: Client, taskQueue: string) => {
    await client.workflow.execute(medallionPipeline, {
      taskQueue, workflowId: uniqueId(`pipeline-${tag}`),
      args: [{ sources, landingPath: landing, workflowIdPrefix, gold: { options: { refreshIntervalSeconds: 0, serverCapacityMbps: { 'srv-a': 1000 } } } }],
    });
    await terminate(client, ids);
  };
  return { lake, landing, refresh, sources, workflowIdPrefix };
}

/** A network controller: PUT/GET/DELETE /throttles/<client>, the first PUT answered 503; every call kept. */
export async function networkController() {
  const limits = new Map<string, number>();
  const calls: { method: string; client: string; key?: string; auth?: string }[] = [];
  let failNextPut = true;
  const server = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      const client = decodeURIComponent((request.url ?? '').replace(/^\/throttles\//, ''));
      calls.push({ method: request.method!, client, key: request.headers['idempotency-key'] as string | undefined, auth: request.headers.authorization });
      const json = (status: number, value?: unknown) => response.writeHead(status, { 'content-type': 'application/json' }).end(value === undefined ? '' : JSON.stringify(value));
      if (request.method === 'PUT') {
        if (failNextPut) { failNextPut = false; return json(503, { error: 'busy' }); }
        limits.set(client, (JSON.parse(body) as { limitMbps: number }).limitMbps);
        return json(200, { ok: true });
      }
      if (request.method === 'GET') return limits.has(client) ? json(200, { limitMbps: limits.get(client), detail: `rate-limit ${limits.get(client)} Mbps` }) : json(404);
      if (request.method === 'DELETE') return json(limits.delete(client) ? 200 : 404);
      return json(405);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, limits, calls, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** Why an update failed: the workflow's message, under the client's "Workflow Update failed". */
export const updateRefusal = (update: Promise<unknown>) => update.then(() => 'accepted', (error: Error) => (error.cause as Error | undefined)?.message ?? error.message);

export const audit = (lake: LakeConfig, client: string) => sqlRows<{ seq: string; transition: string; state: string; actor: string; limit_mbps: string; adapter: string | null }>(
  `SELECT seq, transition, state, actor, limit_mbps, adapter FROM actions.throttle_audit WHERE client = '${client}' ORDER BY happened_at, seq`, lake);

export async function stateOf(client: Client, workflowId: string): Promise<ThrottleView | undefined> {
  return client.workflow.getHandle(workflowId).query(throttleQuery).catch(() => undefined);
}
export const reaches = (client: Client, workflowId: string, state: string) =>
  waitFor(`${workflowId} ${state}`, async () => ((await stateOf(client, workflowId))?.state === state ? true : undefined), 60_000);

export async function withController(client: Client, taskQueue: string, policy: ThrottlePolicyInput, body: (controllerId: string) => Promise<void>): Promise<void> {
  const controllerId = uniqueId('throttle-controller');
  await client.workflow.start(throttleControllerWorkflow, { taskQueue, workflowId: controllerId, args: [{ observeSeconds: 1, policy }] });
  try {
    await body(controllerId);
  } finally {
    await terminate(client, [controllerId]);
  }
}

