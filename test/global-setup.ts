// Jest global setup: a real Temporal dev server (unless TEMPORAL_ADDRESS is given), a throwaway
// PostgreSQL lake catalog (unless NETPULSE_CATALOG is given) and one workflow bundle shared by
// every test file, so each file does not re-run webpack. Everything the run puts in the system
// temp folder goes in a folder of the run's own (TMPDIR), which global teardown checks and removes.
import { bundleWorkflowCode } from '@temporalio/worker';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startDevCatalog } from '../scripts/dev-catalog';
import { startDevServer } from '../scripts/dev-server';

export default async function globalSetup(): Promise<void> {
  // First, so that this process, the test files and every process they start (workers, the CLI,
  // Temporal, PostgreSQL's tools) make their temp files in it. Traversable: PostgreSQL runs as the
  // postgres user when we are root, and the catalog's cluster is in here.
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'netpulse-run-'));
  chmodSync(runDir, 0o711);
  process.env.NETPULSE_TEST_RUN_DIR = runDir;
  process.env.TMPDIR = runDir;
  // The workers' log of this run (test/helpers.ts: WORKER_LOG), empty at its start.
  mkdirSync(path.join(__dirname, '..', 'test-output'), { recursive: true });
  writeFileSync(path.join(__dirname, '..', 'test-output', 'workers.log'), '');
  if (!process.env.TEMPORAL_ADDRESS) {
    const server = await startDevServer();
    process.env.TEMPORAL_ADDRESS = server.address;
    (globalThis as { __temporalServer?: unknown }).__temporalServer = server.process;
    console.log(`\n[test] Temporal dev server at ${server.address}`);
  }
  if (!process.env.NETPULSE_CATALOG) {
    const catalog = await startDevCatalog(); // sets NETPULSE_CATALOG, NETPULSE_CATALOG_READER
    (globalThis as { __netpulseCatalog?: unknown }).__netpulseCatalog = catalog;
    console.log(`[test] lake catalog (PostgreSQL) at ${catalog.connection} (reader ${catalog.readerConnection})`);
  }
  // Tests keep their landing zones in temporary folders.
  process.env.NETPULSE_LANDING_ROOTS ??= [os.tmpdir(), path.resolve(__dirname, '..', 'data')].join(path.delimiter);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'netpulse-bundle-'));
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    logger: { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} } as never,
  });
  writeFileSync(path.join(dir, 'workflows.js'), code);
  process.env.NETPULSE_TEST_BUNDLE = path.join(dir, 'workflows.js');
}
