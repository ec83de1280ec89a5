// A throwaway S3 server (SeaweedFS) for the tests and benchmarks: scripts/s3.sh itself, in a data
// folder of its own on ten free consecutive loopback ports, so they run it as `up.sh --s3` does.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { config } from '../config';

export interface DevS3 {
  /** The environment that points a process at this store, keys included (never log it). */
  env: Record<string, string>;
  bucket: string;
  stop: () => void;
}

const canListen = (port: number) => new Promise<boolean>((resolve) => {
  const server = net.createServer();
  server.once('error', () => resolve(false));
  server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
});

/** The first of ten consecutive free ports, from a random start (a port can still be taken before weed binds it: the start then fails and is tried again). */
export async function freePortRange(): Promise<number> {
  for (;;) {
    const first = 20000 + Math.floor(Math.random() * 30000);
    let free = true;
    for (let p = first; p < first + 10 && free; p++) free = await canListen(p);
    if (free) return first;
  }
}

function s3Script(command: string, dir: string, port: number): { status: number | null; output: string } {
  const env: NodeJS.ProcessEnv = { ...process.env, NETPULSE_DATA_DIR: dir, NETPULSE_S3_PORT: String(port) };
  const result = spawnSync('bash', [path.join(config.projectRoot, 'scripts', 's3.sh'), command], { env, encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** Starts SeaweedFS with its data in `dir`; `stop` stops it and deletes `dir`. */
export async function startDevS3(dir: string): Promise<DevS3> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePortRange();
    const started = s3Script('start', dir, port);
    if (started.status !== 0) {
      if (attempt < 3) continue;
      throw new Error(`scripts/s3.sh start failed: ${started.output}`);
    }
    const pid = Number(readFileSync(path.join(dir, 's3', 'weed.pid'), 'utf8'));
    const keys = Object.fromEntries(readFileSync(path.join(dir, 'secrets', 's3.env'), 'utf8').trim().split('\n').map((line) => {
      const at = line.indexOf('=');
      return [line.slice(0, at), line.slice(at + 1)];
    }));
    return {
      env: { ...keys, NETPULSE_S3_ENDPOINT: `127.0.0.1:${port}`, NETPULSE_S3_URL_STYLE: 'path', NETPULSE_S3_USE_SSL: 'false', AWS_REGION: 'us-east-1' },
      bucket: 'netpulse',
      // Stopped by its pid too: the folder with s3.sh's pid file may be gone already (a test's temp folders).
      stop: () => {
        s3Script('stop', dir, port);
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // exited already
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
}
