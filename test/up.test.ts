// scripts/up.sh as a developer runs it, `bash scripts/up.sh | tee up.log`, stopped with Ctrl-C:
// the SIGINT goes to the whole job, so tee is gone before up.sh writes its first shutdown line.
// Everything up.sh started must still stop, and the shutdown must be in data/logs/up.log. It runs
// in a data folder and on ports of its own, beside the test run's own Temporal and catalog.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { DEFAULT_SILVER_SHARDS } from '../rules/shards';
import { silverOwnerIds } from '../client/owner-state';
import { freePortRange } from '../scripts/dev-s3';
import { freePort } from '../scripts/dev-server';
import { closeTestResources, tempDir, waitFor } from './helpers';

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

/**
 * Runs `bash scripts/up.sh <args> | tee` in a data folder and on ports of its own, waits until it is
 * up, runs `whileUp`, then sends Ctrl-C to the whole job and checks that everything stopped.
 */
async function upAndCtrlC(args: string[], extraPorts: Record<string, number>, whileUp: (env: Record<string, string>, data: string) => Promise<void>) {
  const dir = tempDir('up');
  chmodSync(dir, 0o711); // the postgres user (we are root in CI) reaches the cluster in data/catalog
  const data = path.join(dir, 'data');
  const ports = {
    TEMPORAL_PORT: await freePort(), TEMPORAL_UI_PORT: await freePort(), NETPULSE_CATALOG_PORT: await freePort(), NETPULSE_DASHBOARD_PORT: await freePort(),
    ...extraPorts,
  };
  // Nothing of the test run's own Temporal, catalog or landing roots: up.sh's defaults, in `data`.
  const inherited = Object.entries(process.env).filter(([name]) => !/^(NETPULSE|TEMPORAL|AWS)_/.test(name));
  const env = {
    ...Object.fromEntries(inherited), ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
    NETPULSE_DATA_DIR: data, NETPULSE_SKIP_SETUP: '1',
  };
  // A job of its own (a process group, as a shell makes for a pipeline), which Ctrl-C signals whole.
  const job = spawn('bash', ['-c', 'bash scripts/up.sh "${@:2}" | tee "$1"', 'up', path.join(dir, 'tee.log'), ...args],
    { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  job.stdout!.on('data', (chunk: Buffer) => (output += chunk));
  job.stderr!.on('data', (chunk: Buffer) => (output += chunk));
  const exited = new Promise<void>((resolve) => job.once('exit', () => resolve()));
  const pgid = job.pid!;
  try {
    await waitFor('up.sh to say it is up', () => {
      if (job.exitCode !== null || job.signalCode !== null) throw new Error(`up.sh exited (${job.exitCode ?? job.signalCode}) before it was up`);
      return output.includes('[up] answers:');
    }, 120_000).catch((error: Error) => { throw new Error(`${error.message}; its output:\n${output}`); });
    expect(await listening(ports.TEMPORAL_PORT)).toBe(true);
    expect(await listening(ports.NETPULSE_CATALOG_PORT)).toBe(true);
    expect(existsSync(path.join(data, 'catalog', 'PG_VERSION'))).toBe(true);
    await whileUp(env, data);

    process.kill(-pgid, 'SIGINT'); // Ctrl-C: up.sh, tee, the worker, everything in the job
    await exited; // the job's shell returns once up.sh and tee have
    const open: Record<string, boolean> = {};
    for (const [name, port] of Object.entries(ports)) open[name] = await listening(port);
    expect(open).toEqual(Object.fromEntries(Object.keys(ports).map((name) => [name, false])));
    await waitFor('every process of the job to exit', () => !groupAlive(pgid), 10_000);

    expect(readFileSync(path.join(dir, 'tee.log'), 'utf8')).not.toContain('[up] stopping'); // tee was gone
    const log = readFileSync(path.join(data, 'logs', 'up.log'), 'utf8');
    const shutdown = log.slice(log.lastIndexOf('[up] stopping'));
    expect(shutdown).toMatch(/^\[up\] stopping the worker/);
    expect(shutdown).toMatch(/\n\[catalog\] .*\n/);
    expect(shutdown).toMatch(/\n\[server\] stopped\n/);
    expect(shutdown).toMatch(/\n\[up\] stopped\n$/);
  } finally {
    // What a failed shutdown left (up.sh before this test left PostgreSQL running): stopped here, so the folder can go.
    if (groupAlive(pgid)) process.kill(-pgid, 'SIGKILL');
    for (const script of ['catalog.sh', 'server.sh', 's3.sh']) spawnSync('bash', [path.join('scripts', script), 'stop'], { cwd: ROOT, env });
  }
}

test('up.sh piped into tee and stopped with Ctrl-C stops PostgreSQL, Temporal and every process it started, and logs its shutdown', async () => {
  await upAndCtrlC([], {}, async () => undefined);
}, 240_000);

test('up.sh --s3 puts the lake and the landing zone in a local S3 server, the CLI reads them from the data folder\'s settings, and Ctrl-C stops the S3 server too', async () => {
  await upAndCtrlC(['--s3'], { NETPULSE_S3_PORT: await freePortRange() }, async (env, data) => {
    const cli = (...args: string[]) => spawnSync(process.execPath, [path.join(ROOT, 'dist', 'client', 'cli.js'), ...args],
      { env: { ...env, TEMPORAL_ADDRESS: `127.0.0.1:${env.TEMPORAL_PORT}` }, encoding: 'utf8' });
    // The settings the CLI takes from the data folder: where the lake is, and a key file only its owner reads.
    expect(readFileSync(path.join(data, 'netpulse.env'), 'utf8')).toMatch(/^NETPULSE_DATA_PATH=s3:\/\/netpulse\/lake$/m);
    expect(statSync(path.join(data, 'secrets', 's3.env')).mode & 0o777).toBe(0o600);
    const events = await waitFor('silver events from the S3 landing zone', () => {
      const run = cli('query', '--format', 'csv', 'SELECT count(*) FROM silver.events');
      const n = Number(run.stdout.trim().split('\n').pop());
      return n > 0 ? n : undefined;
    }, 90_000);
    expect(events).toBeGreaterThan(0);
    // up.sh makes the lake with the default shard count, every shard's owner running.
    const shards = cli('silver', 'shards');
    expect(shards.stdout).toMatch(new RegExp(`^silver has ${DEFAULT_SILVER_SHARDS} shards?\n`));
    for (const owner of silverOwnerIds(DEFAULT_SILVER_SHARDS)) expect(shards.stdout).toMatch(new RegExp(`${owner} .*\d`));
    expect(existsSync(path.join(data, 'lake'))).toBe(false); // no lake on local disk
    expect(existsSync(path.join(data, 'landing'))).toBe(false);
    const up = readFileSync(path.join(data, 'logs', 'up.log'), 'utf8');
    expect(up).toContain('[up] landing zone: s3://netpulse/landing   lake files: s3://netpulse/lake');
    expect(up).not.toMatch(/AWS_SECRET_ACCESS_KEY|NPW[A-Z0-9]{17}/); // no key in the log
  });
}, 300_000);

test('server.sh start refuses a port another process holds, and never calls someone else\'s Temporal its own', async () => {
  const data = path.join(tempDir('server-port'), 'data');
  const start = (env: Record<string, string>) => spawnSync('bash', [path.join(ROOT, 'scripts', 'server.sh'), 'start'],
    { env: { ...process.env, NETPULSE_DATA_DIR: data, ...env }, encoding: 'utf8', timeout: 90_000 });
  // The test run's own Temporal answers on its port: before, its health check made start report "healthy" while its own server died.
  const theirs = process.env.TEMPORAL_ADDRESS!.split(':').pop()!;
  const taken = start({ TEMPORAL_PORT: theirs, TEMPORAL_UI_PORT: String(await freePort()) });
  expect({ status: taken.status, stdout: taken.stdout }).toEqual({ status: 1, stdout: '' });
  expect(taken.stderr).toMatch(new RegExp(`port ${theirs} on 127\\.0\\.0\\.1 is already in use by users:\\(\\("temporal",pid=\\d+.*not using that one`));
  // A plain listener on the Web UI's port: refused the same way, and nothing was left running.
  const blocker = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => blocker.once('listening', resolve));
  const uiPort = (blocker.address() as net.AddressInfo).port;
  try {
    const ui = start({ TEMPORAL_PORT: String(await freePort()), TEMPORAL_UI_PORT: String(uiPort) });
    expect(ui.status).toBe(1);
    expect(ui.stderr).toMatch(new RegExp(`port ${uiPort} on 127\\.0\\.0\\.1 is already in use`));
  } finally {
    blocker.close();
  }
  expect(existsSync(path.join(data, 'temporal.pid'))).toBe(false);
});
