// Starts a throwaway PostgreSQL cluster (fresh temp dir, free port) as the lake's DuckLake catalog;
// used by the test setup. Same settings as scripts/catalog.sh: loopback only, trust auth, user and
// database netpulse.
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
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

export async function startDevCatalog(): Promise<{ connection: string; dir: string; stop: () => Promise<void> }> {
  const bin = postgresBinDir();
  const tool = (name: string) => (existsSync(path.join(bin, name)) ? path.join(bin, name) : name);
  // PostgreSQL refuses to run as root: then the server tools run as the postgres user, from /.
  const asRoot = process.getuid?.() === 0;
  const run = (name: string, args: string[], client = false) => {
    const [cmd, argv] = asRoot && !client ? ['runuser', ['-u', 'postgres', '--', tool(name), ...args]] : [tool(name), args];
    const result = spawnSync(cmd, argv, { cwd: '/', encoding: 'utf8' });
    if (result.status !== 0) {
      throw new Error(`${name} ${args[0]} failed (${result.error?.message ?? `exit ${result.status}`}): ${result.stderr || result.stdout}`);
    }
  };

  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'netpulse-catalog-'));
  const log = path.join(dir, 'postgres.log');
  const stopCluster = () => run('pg_ctl', ['stop', '-D', dir, '-m', 'immediate', '-w']);
  try {
    if (asRoot) {
      const id = (flag: string) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim() || NaN);
      const [uid, gid] = [id('-u'), id('-g')];
      if (Number.isNaN(uid)) throw new Error("running as root and there is no 'postgres' user to run PostgreSQL as");
      chownSync(dir, uid, gid);
    }
    run('initdb', ['-D', dir, '-A', 'trust', '-U', 'netpulse', '-E', 'UTF8', '--locale=C']);
    // fsync off: a throwaway cluster gains nothing from durability, and tests commit often.
    run('pg_ctl', ['start', '-D', dir, '-l', log, '-w', '-t', '60',
      '-o', `-p ${port} -c listen_addresses=127.0.0.1 -k '${dir}' -c fsync=off`]);
    run('createdb', ['-h', '127.0.0.1', '-p', String(port), '-U', 'netpulse', 'netpulse'], true);
  } catch (error) {
    const tail = existsSync(log) ? `\n${readFileSync(log, 'utf8').split('\n').slice(-20).join('\n')}` : '';
    try { stopCluster(); } catch { /* it never started */ }
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`dev catalog (PostgreSQL) did not start: ${(error as Error).message}${tail}`);
  }

  const stop = async () => {
    try {
      stopCluster();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  return { connection: `host=127.0.0.1 port=${port} dbname=netpulse user=netpulse`, dir, stop };
}
