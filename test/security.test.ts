// Least privilege on the lake's catalog, as a user meets it: the CLI's sandboxed query refuses what
// reaches past the lake, and behind it PostgreSQL itself refuses it to the reader role; the roles
// log in only with their passwords; no customer data reaches the catalog's log; a catalog made by
// an earlier version (trust, a superuser for everything) gets all of this on its next start.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { closeLakes, LAKE, withLake } from '../lake/catalog';
import { sqlString } from '../lake/duckdb';
import { freePort } from '../scripts/dev-server';
import { catalogScript, postgresBinDir } from '../scripts/dev-catalog';
import { bronzeWorkflowId, DEFAULT_SOURCES } from '../rules/bronze';
import { GOLD_WORKFLOW_ID, SILVER_WORKFLOW_ID } from '../rules/layers';
import { cli, cliLake, closeTestResources, stopProcess, tempDir, terminateAll, withWorker } from './helpers';

// `netpulse run` starts the default owner workflows; each test's run has a worker of its own.
afterEach(() => terminateAll([...DEFAULT_SOURCES.map((s) => bronzeWorkflowId(s)), SILVER_WORKFLOW_ID, GOLD_WORKFLOW_ID]));

afterAll(closeTestResources);

/** psql (a client nobody here wrote) with one statement; `connection` names its password file, or none. */
function psql(connection: string, sql: string, extraEnv: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('psql', ['-X', '-w', '-tA', '-v', 'ON_ERROR_STOP=1', connection, '-c', sql],
      { env: { ...process.env, PGPASSFILE: '/nonexistent', ...extraEnv } },
      (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }));
  });
}

const METADATA_DB = `__ducklake_metadata_${LAKE}`;
const reader = () => process.env.NETPULSE_CATALOG_READER!;
const writer = () => process.env.NETPULSE_CATALOG!;
const withoutPassfile = (connection: string) => connection.replace(/ passfile=\S+/, '');

test('a read-only query cannot reach the shell, host files or the catalog: the CLI refuses it, and PostgreSQL refuses it to the reader role', async () => {
  const { env, lake, taskQueue, deps } = await cliLake('security', 4, 10);
  const marker = path.join(path.dirname(lake.dataPath), 'program-ran');
  await withWorker(async () => {
    expect((await cli(['run'], env)).code).toBe(0);
  }, { taskQueue, deps });
  const count = async () => (await cli(['query', 'SELECT count(*) AS n FROM bronze.celular_conectado', '--format', 'csv'], env)).stdout;
  const before = await count();
  expect(before).toBe('n\n10\n');

  const inner = (sql: string) => sqlString(sql);
  const hostile: [string, RegExp][] = [
    [`SELECT * FROM postgres_query('${METADATA_DB}', ${inner("SELECT pg_read_file('/etc/passwd')")})`, /postgres_query\(\) is not allowed/],
    [`SELECT * FROM postgres_execute('${METADATA_DB}', ${inner(`COPY (SELECT 1) TO PROGRAM 'id > ${marker}'`)})`, /postgres_execute\(\) is not allowed/],
    [`CALL postgres_execute('${METADATA_DB}', ${inner(`COPY (SELECT 1) TO PROGRAM 'id > ${marker}'`)})`, /only SELECT statements/],
    [`SELECT * FROM postgres_execute('${METADATA_DB}', ${inner(`SET TRANSACTION READ WRITE; DROP SCHEMA ${lake.catalogSchema} CASCADE`)})`, /postgres_execute\(\) is not allowed/],
    // spelling, nesting and quoting do not hide a call: the check reads DuckDB's parse tree
    [`select x from (with t as (select * from "POSTGRES_SCAN"('${METADATA_DB}', 'public', 'x')) select 1 as x from t)`, /postgres_scan\(\) is not allowed/],
    [`SELECT (SELECT count(*) FROM read_text('/etc/passwd')) AS n`, /read_text\(\) is not allowed/],
    ["SELECT * FROM '/etc/passwd'", /FROM '\/etc\/passwd' is not allowed/],
    ["SELECT * FROM query('SELECT 1')", /query\(\) is not allowed/],
    [`SELECT * FROM ducklake_merge_adjacent_files('${LAKE}')`, /ducklake_merge_adjacent_files\(\) is not allowed/],
    [`SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT 1'))`, /json_execute_serialized_sql\(\) is not allowed/],
    [`SELECT postgres_query_text /* a column */, ducklake_flush_inlined_data(1) FROM range(1) t(postgres_query_text)`, /ducklake_flush_inlined_data\(\) is not allowed/],
  ];
  for (const [sql, message] of hostile) {
    const result = await cli(['query', sql], env);
    expect({ sql, code: result.code }).toEqual({ sql, code: 2 });
    expect(result.stderr).toMatch(message);
  }
  // What readers need still runs: the lake's tables, its change feed and snapshots, generators.
  const latest = JSON.parse((await cli(['query', `SELECT max(snapshot_id) AS v FROM ducklake_snapshots('${LAKE}')`, '--format', 'json'], env)).stdout)[0].v;
  for (const sql of [`SELECT count(*) AS n FROM ducklake_table_changes('${LAKE}', 'bronze', 'celular_conectado', 0, ${latest})`,
    'SELECT sum(range) AS n FROM range(4)', 'SELECT lower(Nome) AS n FROM bronze.celular_conectado LIMIT 1']) {
    const result = await cli(['query', sql], env);
    expect({ sql, code: result.code, stderr: result.stderr }).toEqual({ sql, code: 0, stderr: '' });
  }

  // The first wall: the reader role's attachment, with the sandbox's check bypassed, and psql.
  const throughDuckDB = (sql: string) => withLake(lake, async (db) => (await db.runAndReadAll(sql)).getRows(), { readOnly: true })
    .then(() => 'ran', (error: Error) => error.message);
  expect(await throughDuckDB(`SELECT * FROM postgres_query('${METADATA_DB}', ${inner("SELECT pg_read_file('/etc/passwd')")})`)).toMatch(/permission denied for function pg_read_file/);
  expect(await throughDuckDB(`CALL postgres_execute('${METADATA_DB}', ${inner(`COPY (SELECT 1) TO PROGRAM 'id > ${marker}'`)})`)).not.toBe('ran');
  const asReader: [string, RegExp][] = [
    ["SELECT pg_read_file('/etc/passwd')", /permission denied for function pg_read_file/],
    [`COPY (SELECT 1) TO PROGRAM 'id > ${marker}'`, /must be superuser or have privileges of the pg_execute_server_program role/],
    ['CREATE TABLE public.probe (x int)', /read-only transaction|permission denied/],
    ['SET TRANSACTION READ WRITE; CREATE TABLE public.probe (x int)', /permission denied for schema public/],
    [`SET TRANSACTION READ WRITE; DELETE FROM ${lake.catalogSchema}.ducklake_snapshot`, /permission denied for table ducklake_snapshot/],
    [`SET TRANSACTION READ WRITE; DROP SCHEMA ${lake.catalogSchema} CASCADE`, /must be owner of schema/],
    ['SET TRANSACTION READ WRITE; CREATE TEMP TABLE probe (x int)', /permission denied to create temporary tables/],
  ];
  for (const [sql, message] of asReader) {
    const result = await psql(reader(), sql);
    expect({ sql, failed: result.code !== 0 }).toEqual({ sql, failed: true });
    expect(result.out).toMatch(message);
  }
  // The writer owns the lake's metadata and nothing more: no host files, no programs, no roles.
  expect((await psql(writer(), "SELECT pg_read_file('/etc/passwd')")).out).toMatch(/permission denied/);
  expect((await psql(writer(), `COPY (SELECT 1) TO PROGRAM 'id > ${marker}'`)).out).toMatch(/pg_execute_server_program/);
  expect((await psql(writer(), `SELECT string_agg(rolname || ':' || rolsuper || rolcreaterole || rolcreatedb || rolreplication || rolbypassrls
    || pg_has_role(rolname, 'pg_read_server_files', 'USAGE') || pg_has_role(rolname, 'pg_execute_server_program', 'USAGE'), ' ' ORDER BY rolname)
    FROM pg_roles WHERE rolname LIKE 'netpulse\\_%'`)).out.trim()).toBe('netpulse_reader:falsefalsefalsefalsefalsefalsefalse netpulse_writer:falsefalsefalsefalsefalsefalsefalse');
  expect(existsSync(marker)).toBe(false);
  expect((await psql(writer(), "SELECT count(*) FROM pg_class WHERE relname = 'probe'")).out.trim()).toBe('0');
  expect(await count()).toBe(before);

  // No password, no login; a wrong one, no login; and no role but the lake's two over TCP.
  expect((await psql(withoutPassfile(reader()), 'SELECT 1')).out).toMatch(/no password supplied/);
  expect((await psql(withoutPassfile(reader()), 'SELECT 1', { PGPASSWORD: 'guess' })).out).toMatch(/password authentication failed for user "netpulse_reader"/);
  expect((await psql(writer().replace('user=netpulse_writer', 'user=postgres'), 'SELECT 1')).out).toMatch(/no pg_hba.conf entry/);
  expect((await psql(writer().replace('user=netpulse_writer', 'user=netpulse'), 'SELECT 1')).out).toMatch(/no pg_hba.conf entry/);
});

/** A process's TCP connections to the catalog, by local port (as root, ss shows every process's sockets). */
function catalogSocketsOf(pid: number): number[] {
  const port = /port=(\d+)/.exec(writer())![1];
  return spawnSync('ss', ['-tnpH', 'dst', `127.0.0.1:${port}`], { encoding: 'utf8' }).stdout.split('\n')
    .filter((line) => line.includes(`pid=${pid},`)).map((line) => Number(/127\.0\.0\.1:(\d+)\s+127\.0\.0\.1:\d+/.exec(line)?.[1]));
}

test("the dashboard's process reads the lake as the reader role only", async () => {
  const { env, taskQueue, deps } = await cliLake('dashrole', 4, 10);
  await withWorker(async () => {
    expect((await cli(['run'], env)).code).toBe(0);
  }, { taskQueue, deps });
  const port = await freePort();
  const dashboard: ChildProcess = spawn(process.execPath, [path.join(__dirname, '..', 'dist', 'client', 'cli.js'), 'dashboard', '--port', String(port)],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = await fetch(`http://127.0.0.1:${port}/api/dashboard`).then((r) => r.status, () => 0);
      if (status !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toBe(200);
    // PostgreSQL shows a role the client ports of its own sessions only: every one of the
    // dashboard's connections must be among the reader's.
    const sockets = catalogSocketsOf(dashboard.pid!);
    expect(sockets.length).toBeGreaterThan(0);
    const readers = await psql(reader(), `SELECT count(*) FROM pg_stat_activity WHERE usename = 'netpulse_reader' AND client_port IN (${sockets.join(', ')})`);
    expect(Number(readers.out.trim())).toBe(sockets.length);
  } finally {
    await stopProcess(dashboard, 'SIGTERM');
  }
});

test('a catalog made by the earlier trust-auth version gets the roles, passwords and quiet logs on its next start, and its lake reads the same', async () => {
  const dir = tempDir('oldcatalog');
  chmodSync(dir, 0o711);
  const port = await freePort();
  const bin = postgresBinDir();
  const cluster = path.join(dir, 'catalog');
  const asServerUser = (tool: string, args: string[]) => {
    const [cmd, argv] = process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', path.join(bin, tool), ...args]] : [path.join(bin, tool), args];
    const result = spawnSync(cmd, argv, { cwd: '/', encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`${tool}: ${result.stderr}`);
  };
  const schema = 'old_lake';
  const oldUrl = `host=127.0.0.1 port=${port} dbname=netpulse user=netpulse`;
  const rowsOf = (catalog: string, readOnly: boolean) => withLake({ catalog, readerCatalog: catalog, catalogSchema: schema, dataPath: path.join(dir, 'lake') },
    async (db) => (await db.runAndReadAll('SELECT Nome FROM gold.t ORDER BY ALL')).getRowObjectsJson(), { readOnly });
  try {
    // What scripts/catalog.sh did before: trust for everyone, the superuser netpulse for the lake.
    spawnSync('mkdir', ['-p', cluster]);
    if (process.getuid?.() === 0) spawnSync('chown', ['postgres:', cluster]);
    asServerUser('initdb', ['-D', cluster, '-A', 'trust', '-U', 'netpulse', '-E', 'UTF8', '--locale=C']);
    asServerUser('pg_ctl', ['start', '-D', cluster, '-l', path.join(cluster, 'old.log'), '-w', '-o', `-p ${port} -c listen_addresses=127.0.0.1 -k '${cluster}'`]);
    expect((await psql(`host=127.0.0.1 port=${port} dbname=postgres user=netpulse`, 'CREATE DATABASE netpulse')).code).toBe(0);
    await withLake({ catalog: oldUrl, catalogSchema: schema, dataPath: path.join(dir, 'lake') }, async (db) => {
      await db.run("CREATE TABLE gold.t AS SELECT * FROM (VALUES ('Ana'), ('Bia')) v(Nome)");
    });
    await closeLakes();
    asServerUser('pg_ctl', ['stop', '-D', cluster, '-m', 'fast', '-w']);

    const started = catalogScript('start', dir, port);
    expect(started).toMatch(/used trust authentication: moving it to passwords and two lake roles/);
    expect(readFileSync(path.join(dir, 'secrets', 'pgpass'), 'utf8')).toMatch(/^\*:\*:netpulse:netpulse_writer:\w{20,}\n\*:\*:netpulse:netpulse_reader:\w{20,}\n$/);
    expect(readdirSync(path.join(dir, 'secrets')).length).toBe(1);
    const passfile = path.join(dir, 'secrets', 'pgpass');
    try {
      const url = (role: string) => `host=127.0.0.1 port=${port} dbname=netpulse user=netpulse_${role} passfile=${passfile}`;
      expect(await rowsOf(url('reader'), true)).toEqual([{ Nome: 'Ana' }, { Nome: 'Bia' }]);
      await withLake({ catalog: url('writer'), catalogSchema: schema, dataPath: path.join(dir, 'lake') }, (db) => db.run("INSERT INTO gold.t VALUES ('Caio')"));
      await closeLakes();
      expect(await rowsOf(url('reader'), true)).toEqual([{ Nome: 'Ana' }, { Nome: 'Bia' }, { Nome: 'Caio' }]);
      expect((await psql(oldUrl, 'SELECT 1')).out).toMatch(/no pg_hba.conf entry/);
      expect((await psql(withoutPassfile(url('writer')), 'SELECT 1')).out).toMatch(/no password supplied/);
      expect(readFileSync(path.join(cluster, 'pg_hba.conf'), 'utf8')).not.toMatch(/^[^#]*trust/m);

      // An error with customer data in its statement and DETAIL leaves neither in the log.
      const secret = 'Zélia Marcadora da Silva';
      await psql(url('writer'), `CREATE TABLE ${schema}.probe (nome text PRIMARY KEY); INSERT INTO ${schema}.probe VALUES (${sqlString(secret)}), (${sqlString(secret)})`);
      await psql(url('writer'), 'SELECT pg_sleep(0.5)'); // the logging collector writes asynchronously
      const logs = readdirSync(path.join(cluster, 'log')).map((f) => readFileSync(path.join(cluster, 'log', f), 'utf8')).join('\n');
      expect(logs).toMatch(/duplicate key value violates unique constraint "probe_pkey"/);
      expect(logs).not.toContain('Zélia');
    } finally {
      await closeLakes();
    }
  } finally {
    try { catalogScript('stop', dir, port); } catch { /* never started */ }
  }
});

test('a data folder the server user cannot reach gets its cluster in a folder that user owns; no folder above it is opened', async () => {
  const root = process.getuid?.() === 0;
  const dir = tempDir('private'); // mode 0700, as a home folder is
  const data = path.join(dir, 'data');
  const port = await freePort();
  let cluster = path.join(data, 'catalog');
  try {
    const started = catalogScript('start', data, port);
    if (root) {
      // PostgreSQL runs as postgres, which cannot pass the private folder: its cluster lives where it can.
      const moved = /is not reachable by the postgres user .*: the cluster lives in (\S+), owned by postgres/.exec(started);
      expect(moved).not.toBeNull();
      cluster = moved![1];
      const home = spawnSync('getent', ['passwd', 'postgres'], { encoding: 'utf8' }).stdout.split(':')[5];
      expect(cluster.startsWith(`${home}/netpulse-catalogs/`)).toBe(true);
      expect(statSync(cluster).uid).toBe(Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout));
    }
    expect(existsSync(path.join(cluster, 'PG_VERSION'))).toBe(true);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const passfile = path.join(data, 'secrets', 'pgpass');
    expect(statSync(passfile).mode & 0o777).toBe(0o600);
    expect((await psql(`host=127.0.0.1 port=${port} dbname=netpulse user=netpulse_reader passfile=${passfile}`, 'SELECT current_user')).out.trim()).toBe('netpulse_reader');
  } finally {
    try { catalogScript('stop', data, port); } catch { /* never started */ }
    if (root && cluster !== path.join(data, 'catalog')) {
      rmSync(cluster, { recursive: true, force: true });
      if (readdirSync(path.dirname(cluster)).length === 0) rmSync(path.dirname(cluster), { recursive: true });
    }
  }
});
