// Jest global teardown: stops the catalog and the Temporal dev server, deletes the workflow
// bundle, then fails the run if anything else is left in the run's temp folder (global-setup.ts):
// each test file deletes its tempDir() folders, and DuckDB its spill folders, so what is left is
// a leak. Other runs on the machine have folders of their own, never looked at here.
import type { ChildProcess } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';

export default async function globalTeardown(): Promise<void> {
  await (globalThis as { __netpulseCatalog?: { stop: () => Promise<void> } }).__netpulseCatalog?.stop();
  await stopTemporal((globalThis as { __temporalServer?: ChildProcess }).__temporalServer);
  const bundle = process.env.NETPULSE_TEST_BUNDLE;
  if (bundle) rmSync(path.dirname(bundle), { recursive: true, force: true });

  const runDir = process.env.NETPULSE_TEST_RUN_DIR;
  if (!runDir) return;
  const left = readdirSync(runDir);
  rmSync(runDir, { recursive: true, force: true });
  if (left.length > 0) {
    throw new Error(`the test run left ${left.length} temp folder(s) or file(s) behind in ${runDir} (now deleted): ${left.join(', ')}. `
      + 'Make them with tempDir() in test/helpers.ts, which deletes them after the test file, or delete them where they are made.');
  }
}

async function stopTemporal(server: ChildProcess | undefined): Promise<void> {
  if (!server || server.exitCode !== null) return;
  const exited = new Promise((resolve) => server.once('exit', resolve));
  server.kill('SIGTERM');
  // The grace timer is cleared once the server is gone: left running, it kept the test run's
  // process alive for its full ten seconds (what forceExit used to hide).
  let grace: NodeJS.Timeout | undefined;
  await Promise.race([exited, new Promise((r) => { grace = setTimeout(r, 10_000); })]);
  clearTimeout(grace);
  if (server.exitCode === null) server.kill('SIGKILL');
}
