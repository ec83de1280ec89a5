// Starts a throwaway PostgreSQL cluster (fresh temp dir, free port) as the lake's DuckLake catalog,
// for the tests, benchmarks and history recorder: scripts/catalog.sh itself, so they run with the
// same roles, passwords and logging as `up.sh` does. Only fsync is off (nothing here outlives a
// run), and it takes 300 connections: a test file's processes each hold a few (DuckDB's postgres
// extension pools them), and the lake's roles, unlike the superuser, get none of the reserved ones.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { config } from '../config';
import { freePort } from './dev-server';

// initdb/pg_ctl from PATH, else the highest /usr/lib/postgresql/<version>/bin (Debian keeps them there).
export function postgresBinDir(): string {
  const onPath = spawnSync('sh', ['-c', 'command -v initdb >/dev/null && command -v pg_ctl'], { encoding: 'utf8' });
  if (onPath.status === 0) return path.dirname(realpathSync(onPath.stdout.trim()));
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(path.join(root, v, 'bin', 'pg_ctl'))) : [];
  versions.sort((a, b) => b.localeCompare(a, 'en', { numeric: true }));
  if (versions.length) return path.join(root, versions[0], 'bin');
  throw new Error('PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin: '
    + 'install them (apt-get install postgresql) or set NETPULSE_CATALOG to an existing catalog');
}

export interface DevCatalog {
  /** The writer role's libpq connection string (workers). */
  connection: string;
  /** The reader role's (CLI reads, dashboard). */
  readerConnection: string;
  /** The libpq password file with both roles' passwords (named in both connection strings). */
  passfile: string;
  /** The data folder catalog.sh was given: cluster in catalog/, passwords in secrets/. */
  dir: string;
  /** The environment that points a process at this catalog. */
  env: Record<string, string>;
  /** The cluster's log folder (bounded, no statements). */
  logDir: string;
  stop: () => Promise<void>;
  /** Fault tests: stop the server (fast shutdown, connections dropped), start it again on its data and port. */
  pause: () => void;
  resume: () => void;
  /** Fault tests: `pg_ctl restart -m immediate`, every connection dropped at once as in a crash. */
  restartImmediately: () => void;
}

/** Runs scripts/catalog.sh with a data folder and port of its own; throws with its output on failure. */
export function catalogScript(command: string, dir: string, port: number, extraEnv: Record<string, string> = {}): string {
  const env: NodeJS.ProcessEnv = { ...process.env, NETPULSE_DATA_DIR: dir, NETPULSE_CATALOG_PORT: String(port), NETPULSE_CATALOG_FSYNC: 'off', NETPULSE_CATALOG_MAX_CONNECTIONS: '300', ...extraEnv };
  delete env.NETPULSE_CATALOG;
  delete env.NETPULSE_CATALOG_READER;
  const result = spawnSync('bash', [path.join(config.projectRoot, 'scripts', 'catalog.sh'), command], { env, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`catalog.sh ${command} failed (exit ${result.status}): ${result.stderr || result.stdout}`);
  return result.stdout;
}

/**
 * A fresh catalog. Its connection strings are also set in this process's environment
 * (NETPULSE_CATALOG, NETPULSE_CATALOG_READER), so every child process finds it, unless `setEnv`
 * is false (a test's catalog of its own, beside the run's).
 */
export async function startDevCatalog({ setEnv = true } = {}): Promise<DevCatalog> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'netpulse-catalog-'));
  // mkdtemp makes it private; the postgres user (when we are root) must reach the cluster inside.
  chmodSync(dir, 0o711);
  try {
    catalogScript('start', dir, port);
  } catch (error) {
    try { catalogScript('stop', dir, port); } catch { /* it never started */ }
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`dev catalog (PostgreSQL) did not start: ${(error as Error).message}`);
  }
  const passfile = path.join(dir, 'secrets', 'pgpass');
  const url = (role: string) => `host=127.0.0.1 port=${port} dbname=netpulse user=netpulse_${role} passfile=${passfile}`;
  const env = { NETPULSE_CATALOG: url('writer'), NETPULSE_CATALOG_READER: url('reader') };
  if (setEnv) Object.assign(process.env, env);
  const stop = async () => {
    try {
      catalogScript('stop', dir, port);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const cluster = path.join(dir, 'catalog');
  const restartImmediately = () => {
    const pgCtl = [path.join(postgresBinDir(), 'pg_ctl'), 'restart', '-m', 'immediate', '-w', '-D', cluster, '-l', path.join(cluster, 'log', 'restart.log')];
    // As root the server runs as postgres; its output goes to the log, or the restarted server would hold our pipe open.
    const run = process.getuid?.() === 0 ? spawnSync('runuser', ['-u', 'postgres', '--', ...pgCtl], { stdio: 'ignore' }) : spawnSync(pgCtl[0], pgCtl.slice(1), { stdio: 'ignore' });
    if (run.status !== 0) throw new Error(`pg_ctl restart -m immediate failed (exit ${run.status})`);
  };
  return {
    connection: env.NETPULSE_CATALOG, readerConnection: env.NETPULSE_CATALOG_READER, passfile, dir, env, logDir: path.join(cluster, 'log'), stop,
    pause: () => void catalogScript('stop', dir, port), resume: () => void catalogScript('start', dir, port), restartImmediately,
  };
}
