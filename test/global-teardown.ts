// Jest global teardown: stops the catalog and the Temporal dev server, deletes the workflow
// bundle, then fails the run if anything else is left in the run's temp folder (global-setup.ts):
// each test file deletes its tempDir() folders, and DuckDB its spill folders, so what is left is
// a leak. Other runs on the machine have folders of their own, never looked at here.
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

export default async function globalTeardown(): Promise<void> {
  await (globalThis as { __netpulseCatalog?: { stop: () => Promise<void> } }).__netpulseCatalog?.stop();
  await stopTemporal((globalThis as { __temporalServer?: ChildProcess }).__temporalServer);
  const bundle = process.env.NETPULSE_TEST_BUNDLE;
  if (bundle) rmSync(path.dirname(bundle), { recursive: true, force: true });

  const runDir = process.env.NETPULSE_TEST_RUN_DIR;
  if (!runDir) return;
  const running = processesNaming(runDir);
  for (const p of running) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  if (running.length > 0) {
    rmSync(runDir, { recursive: true, force: true });
    throw new Error(`the test run left ${running.length} process(es) running (now killed): ${running.map((p) => `${p.pid} ${p.command.slice(0, 120)}`).join('; ')}. `
      + 'Stop what a test starts in its afterAll (servers, workers), before its temp folders are deleted.');
  }
  const left = readdirSync(runDir);
  rmSync(runDir, { recursive: true, force: true });
  if (left.length > 0) {
    throw new Error(`the test run left ${left.length} temp folder(s) or file(s) behind in ${runDir} (now deleted): ${left.join(', ')}. `
      + 'Make them with tempDir() in test/helpers.ts, which deletes them after the test file, or delete them where they are made.');
  }
}

/** Processes whose command line names `dir` (a server or worker a test started there). */
function processesNaming(dir: string): { pid: number; command: string }[] {
  const found: { pid: number; command: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
      if (command.includes(dir)) found.push({ pid, command });
    } catch {
      // exited, or not ours to read
    }
  }
  return found;
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
