// Starts a throwaway Temporal dev server (in-memory SQLite, free ports) with the project's CLI;
// used by the test setup and the benchmarks.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { config } from '../config';

export const TEMPORAL_CLI = process.env.TEMPORAL_CLI ?? path.join(config.projectRoot, '.tools', 'bin', 'temporal');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * `port` and `dbFile` (SQLite, kept across restarts) let a test kill the server and start it again
 * where it was. A free port can be taken by another process (an outgoing connection's ephemeral
 * port) before the server binds it: a server that exits at start is started again, on new ports
 * unless `port` was given.
 */
export async function startDevServer(options: { port?: number; dbFile?: string } = {}): Promise<{ address: string; process: ChildProcess }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startDevServerOnce(options);
    } catch (error) {
      if (attempt >= 3 || !/exited with/.test((error as Error).message)) throw error;
      console.error(`[dev-server] ${(error as Error).message}; starting it again`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

async function startDevServerOnce(options: { port?: number; dbFile?: string }): Promise<{ address: string; process: ChildProcess }> {
  if (!existsSync(TEMPORAL_CLI)) throw new Error(`${TEMPORAL_CLI} missing: run bash scripts/setup.sh`);
  const [port, httpPort, metricsPort] = [options.port ?? (await freePort()), await freePort(), await freePort()];
  const child = spawn(
    TEMPORAL_CLI,
    ['server', 'start-dev', '--headless', '--ip', '127.0.0.1', '--port', String(port), '--http-port', String(httpPort),
      '--metrics-port', String(metricsPort), '--log-level', 'error', '--namespace', 'default',
      '--search-attribute', 'NetpulseLayer=Keyword', '--search-attribute', 'NetpulseSource=Keyword',
      '--search-attribute', 'NetpulseParked=Bool', '--search-attribute', 'NetpulseRetrying=Bool', ...(options.dbFile ? ['--db-filename', options.dbFile] : [])],
    { stdio: ['ignore', 'ignore', 'inherit'], detached: false },
  );
  const address = `127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`temporal dev server exited with ${child.exitCode}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: '1 second' });
      await connection.healthService.check({});
      await connection.close();
      return { address, process: child };
    } catch (error) {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`temporal dev server not healthy at ${address}: ${(error as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
