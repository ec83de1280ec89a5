// Throttles through crashes: the worker SIGKILLed after the adapter installed the limit and before
// the audit says so, and the Temporal server killed and restarted at that moment. Each time the
// workflow goes on, the network has one limit and the audit each transition once.
import { Client, Connection } from '@temporalio/client';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { startDevServer } from '../scripts/dev-server';
import { decideUpdate } from '../workflows/throttle';
import { closeTestResources, lakeEnv, startWorkerProcess, stopProcess, tempDir, uniqueId, waitFor } from './helpers';
import { audit, lakeWithHeavyClients, networkController, reaches, terminate, withController } from './throttle-fixtures';

afterAll(closeTestResources);

/** Fault injection (lake/failpoints.ts): the worker stops before writing the audit row of the 'applied' transition. */
function pauseBeforeAppliedAudit(dir: string, waitMs: number): Record<string, string> {
  mkdirSync(dir, { recursive: true });
  return { NETPULSE_FAILPOINT_DIR: dir, NETPULSE_FAILPOINT_WAIT_MS: String(waitMs), NETPULSE_FAILPOINT_BATCHES: '^throttle applied ', NETPULSE_FAILPOINT_ONCE: '1' };
}
const paused = (dir: string) => waitFor('the worker paused before the applied audit row', () => (readdirSync(dir).some((f) => f.startsWith('before-commit.')) || undefined), 60_000);

test('the Temporal server killed after the adapter applied a limit and before its audit row, and restarted: one limit, each transition audited once', async () => {
  const prefix = '10.8.4';
  const { lake, landing, refresh } = await lakeWithHeavyClients('throttlerestart', prefix);
  const dir = tempDir('throttle-restart');
  const dbFile = path.join(dir, 'temporal.sqlite');
  const controller = await networkController();
  let server = await startDevServer({ dbFile });
  const port = Number(server.address.split(':')[1]);
  const connect = async () => new Client({ connection: await Connection.connect({ address: server.address }) });
  let client = await connect();
  const taskQueue = uniqueId('tq-throttle-restart');
  const failpoints = path.join(dir, 'failpoints');
  const worker = startWorkerProcess({
    TEMPORAL_ADDRESS: server.address, NETPULSE_TASK_QUEUE: taskQueue, NETPULSE_LANDING_DIR: landing, ...lakeEnv(lake),
    NETPULSE_THROTTLE_ADAPTER: 'webhook', NETPULSE_THROTTLE_WEBHOOK_URL: controller.url, ...pauseBeforeAppliedAudit(failpoints, 12_000),
  });
  const heavy = `${prefix}.10/Computador`;
  const workflowId = `throttle-${prefix}.10-Computador`;
  try {
    await refresh(client, taskQueue);
    await withController(client, taskQueue, { proposePerServer: 1 }, async () => {
      await reaches(client, workflowId, 'proposed');
      await client.workflow.getHandle(workflowId).executeUpdate(decideUpdate, { args: [{ action: 'approve', actor: 'ana', reason: '' }] });
      await paused(failpoints);
      // The network has the limit; the audit does not say so yet.
      expect(controller.limits.get(heavy)).toBe(100);
      expect((await audit(lake, heavy)).map((r) => r.transition)).toEqual(['proposed', 'approved']);
      await stopProcess(server.process, 'SIGKILL');
      await client.connection.close();
      await new Promise((resolve) => setTimeout(resolve, 3000));
      server = await startDevServer({ port, dbFile });
      client = await connect();
      await reaches(client, workflowId, 'in force');
    });
    expect(controller.limits.get(heavy)).toBe(100);
    expect(new Set(controller.calls.filter((c) => c.method === 'PUT').map((c) => c.key)).size).toBe(1);
    expect((await audit(lake, heavy)).map((r) => `${r.seq} ${r.transition}`)).toEqual(['1 proposed', '2 approved', '3 applied', '4 verified']);
  } finally {
    await terminate(client, [workflowId]);
    await stopProcess(worker, 'SIGTERM');
    await client.connection.close();
    await stopProcess(server.process, 'SIGKILL');
    await controller.close();
    expect(existsSync(dbFile)).toBe(true);
  }
});
