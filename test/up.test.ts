// scripts/up.sh as a developer runs it, `bash scripts/up.sh | tee up.log`, stopped with Ctrl-C:
// the SIGINT goes to the whole job, so tee is gone before up.sh writes its first shutdown line.
// Everything up.sh started must still stop, and the shutdown must be in data/logs/up.log. It runs
// in a data folder and on ports of its own, beside the test run's own Temporal and catalog.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { freePort } from '../scripts/dev-server';
import { closeTestResources, tempDir } from './helpers';

afterAll(closeTestResources);

const ROOT = path.join(__dirname, '..');

/** Whether something accepts connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

/** Whether any process of the process group is still alive. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(what: string, probe: () => boolean | Promise<boolean>, timeoutMs: number, context: () => string): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await probe());) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; output so far:\n${context()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('up.sh piped into tee and stopped with Ctrl-C stops PostgreSQL, Temporal and every process it started, and logs its shutdown', async () => {
  const dir = tempDir('up');
  const data = path.join(dir, 'data');
  const ports = {
    TEMPORAL_PORT: await freePort(), TEMPORAL_UI_PORT: await freePort(), NETPULSE_CATALOG_PORT: await freePort(), NETPULSE_DASHBOARD_PORT: await freePort(),
  };
  // Nothing of the test run's own Temporal, catalog or landing roots: up.sh's defaults, in `data`.
  const inherited = Object.entries(process.env).filter(([name]) => !/^(NETPULSE|TEMPORAL)_/.test(name));
  const env = {
    ...Object.fromEntries(inherited), ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
    NETPULSE_DATA_DIR: data, NETPULSE_SKIP_SETUP: '1',
  };
  // A job of its own (a process group, as a shell makes for a pipeline), which Ctrl-C signals whole.
  const job = spawn('bash', ['-c', 'bash scripts/up.sh | tee "$1"', 'up', path.join(dir, 'tee.log')],
    { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  job.stdout!.on('data', (chunk: Buffer) => (output += chunk));
  job.stderr!.on('data', (chunk: Buffer) => (output += chunk));
  const exited = new Promise<void>((resolve) => job.once('exit', () => resolve()));
  const pgid = job.pid!;
  try {
    await waitFor('up.sh to say it is up', () => {
      if (job.exitCode !== null) throw new Error(`up.sh exited with ${job.exitCode} before it was up:\n${output}`);
      return output.includes('[up] answers:');
    }, 120_000, () => output);
    expect(await listening(ports.TEMPORAL_PORT)).toBe(true);
    expect(await listening(ports.NETPULSE_CATALOG_PORT)).toBe(true);

    process.kill(-pgid, 'SIGINT'); // Ctrl-C: up.sh, tee, the worker, everything in the job
    await exited; // the job's shell returns once up.sh and tee have
    const open: Record<string, boolean> = {};
    for (const [name, port] of Object.entries(ports)) open[name] = await listening(port);
    expect(open).toEqual({ TEMPORAL_PORT: false, TEMPORAL_UI_PORT: false, NETPULSE_CATALOG_PORT: false, NETPULSE_DASHBOARD_PORT: false });
    await waitFor('every process of the job to exit', () => !groupAlive(pgid), 10_000, () => output);

    const log = readFileSync(path.join(data, 'logs', 'up.log'), 'utf8');
    const shutdown = log.slice(log.lastIndexOf('[up] stopping'));
    expect(shutdown).toMatch(/^\[up\] stopping the worker/);
    expect(shutdown).toMatch(/\n\[catalog\] .*\n/);
    expect(shutdown).toMatch(/\n\[server\] stopped\n/);
    expect(shutdown).toMatch(/\n\[up\] stopped\n$/);
  } finally {
    // What a failed shutdown left (today's up.sh left PostgreSQL running): stopped here, so the folder can go.
    if (groupAlive(pgid)) process.kill(-pgid, 'SIGKILL');
    for (const script of ['catalog.sh', 'server.sh']) spawnSync('bash', [path.join('scripts', script), 'stop'], { cwd: ROOT, env });
  }
}, 240_000);
