// Records the owner workflows' histories (bronze source, silver's two shards, gold) of a small run with this
// build, for test/replay.test.ts: two passes (the first continues the bronze owner as new
// inside the pass), a silver batch that fails once after its commit and is retried, and a
// runPass update; and the pipelines' own: a one-shot pass (record-2) and a continuous pipeline's
// first three passes (record-continuous). Every run of each is kept. Run it on the commit you are
// about to change:
//
//   npm run build && node dist/scripts/record-histories.js test/histories <label>
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { writeSyntheticLanding } from '../bench/landing-maker';
import { startDevCatalog } from './dev-catalog';
import { startDevServer } from './dev-server';

async function main(outDir: string, label: string): Promise<void> {
  const server = await startDevServer();
  const catalog = await startDevCatalog();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'netpulse-record-'));
  const landing = path.join(dir, 'landing');
  const failpoints = path.join(dir, 'failpoints');
  mkdirSync(failpoints, { recursive: true });
  const worker = spawn(process.execPath, [path.join(__dirname, '..', 'worker.js')], {
    env: {
      ...process.env, TEMPORAL_ADDRESS: server.address, NETPULSE_TASK_QUEUE: 'record', NETPULSE_LOG_LEVEL: 'WARN',
      NETPULSE_CATALOG: catalog.connection, NETPULSE_CATALOG_SCHEMA: 'record', NETPULSE_DATA_PATH: path.join(dir, 'lake'), NETPULSE_LANDING_DIR: landing,
      NETPULSE_FAILPOINT_DIR: failpoints, NETPULSE_FAIL_AFTER_COMMIT: '^silver-0-of-2:0$', NETPULSE_SILVER_SHARDS: '2',
    },
    stdio: 'inherit',
  });
  const client = new Client({ connection: await Connection.connect({ address: server.address }) });
  try {
    // Two passes: the first starts the owners, the second takes two bronze batches.
    const input = { landingPath: landing, sources: [{ name: 'celular_conectado', label: 'Celular Conectado', path: 'Celular/Conectado' }], options: { maxFilesPerBatch: 1, batchesPerRun: 2 } };
    await writeSyntheticLanding({ root: landing, files: 4, rowsPerFile: 20, seed: 1 });
    await client.workflow.execute('medallionPipeline', { taskQueue: 'record', workflowId: 'record-1', args: [input] });
    await writeSyntheticLanding({ root: landing, files: 8, rowsPerFile: 20, seed: 2, prefix: 'second' });
    await client.workflow.execute('medallionPipeline', { taskQueue: 'record', workflowId: 'record-2', args: [input] });
    await client.workflow.getHandle('bronze-celular-conectado').executeUpdate('runPass');
    // A continuous pipeline: two passes (files land for the second), then it is terminated.
    const continuous = await client.workflow.start('medallionPipeline', { taskQueue: 'record', workflowId: 'record-continuous', args: [{ ...input, continuous: true, intervalSeconds: 1 }] });
    const passes = async () => ((await continuous.query('status')) as { totals: { passes: number } }).totals.passes;
    const waitForPasses = async (n: number) => {
      while ((await passes()) < n) await new Promise((resolve) => setTimeout(resolve, 200));
    };
    await waitForPasses(1);
    await writeSyntheticLanding({ root: landing, files: 2, rowsPerFile: 20, seed: 3, prefix: 'third' });
    await waitForPasses(3);
    await continuous.terminate('recorded');
    mkdirSync(outDir, { recursive: true });
    for (const id of ['bronze-celular-conectado', 'silver-0-of-2', 'silver-1-of-2', 'gold', 'record-2', 'record-continuous']) {
      // The chain of runs, followed from the first through each continue-as-new.
      const listed: string[] = [];
      for await (const execution of client.workflow.list({ query: `WorkflowId = "${id}"` })) listed.push(execution.runId);
      const histories = [];
      for (let runId: string | undefined = listed[listed.length - 1]; runId;) {
        // Binary protobuf, read back with @temporalio/proto's own types (historyFromJSON trips over
        // two copies of protobufjs in this install's node_modules).
        const history = await client.workflow.getHandle(id, runId).fetchHistory();
        histories.push(history);
        runId = history.events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
      }
      for (const [i, history] of histories.entries()) {
        const name = `${label}-${id}${histories.length > 1 ? `-run${i + 1}` : ''}.history.pb`;
        writeFileSync(path.join(outDir, name), temporal.api.history.v1.History.encode(history).finish());
        console.log(`${name}: ${history.events?.length} events`);
      }
    }
  } finally {
    worker.kill('SIGTERM');
    await new Promise((resolve) => worker.once('exit', resolve));
    await client.connection.close();
    server.process.kill('SIGTERM');
    await catalog.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const [outDir, label] = process.argv.slice(2);
if (!outDir || !label) {
  console.error('usage: node dist/scripts/record-histories.js <out-dir> <label>');
  process.exit(2);
}
main(path.resolve(outDir), label).catch((error) => {
  console.error(error);
  process.exit(1);
});
