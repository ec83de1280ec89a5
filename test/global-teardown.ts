import type { ChildProcess } from 'node:child_process';

export default async function globalTeardown(): Promise<void> {
  await (globalThis as { __netpulseCatalog?: { stop: () => Promise<void> } }).__netpulseCatalog?.stop();
  const server = (globalThis as { __temporalServer?: ChildProcess }).__temporalServer;
  if (!server || server.exitCode !== null) return;
  const exited = new Promise((resolve) => server.once('exit', resolve));
  server.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  if (server.exitCode === null) server.kill('SIGKILL');
}
