// What one small DuckLake statement costs on a PostgreSQL catalog, and how many catalog queries it
// makes: the statements of lake/commit.ts's protocol, timed one kind at a time (N in a row,
// nothing else in between), outside Temporal.
//
//   node dist/bench/statement-cost.js [--n 50] [--seed-commits 20] [--rows 100] [--count 5]
//        [--inline 1000|default] [--fence-inline 0|none|N] [--data-inline none|N]
//        [--set name=value ...] [--label text] [--json file] [--show-queries] [--trace] [--only a,b,c,d,e,f] [--pool-ab]
//
// Statements: (a) the fence read (readFence's SELECT of lake.fence_<owner>'s one row); (b) a small
// commit: BEGIN; INSERT --rows rows into a data table; UPDATE the fence row; COMMIT (commitOnce's
// shape), each part timed too; (c) a filtered max() on the data table, which --seed-commits such
// commits made first; (d) ATTACH of the (existing) lake under a second name, then DETACH; (e) a new
// connection + USE, as withLake opens one per activity; (f) one postgres-scanner query of a catalog
// table through the attached metadata database (what each of DuckLake's catalog queries costs here).
// Besides wall time: this process's CPU time per statement (all threads, DuckDB's included).
//
// The lake is attached as lake/catalog.ts does (same instance settings, LOAD, ATTACH options,
// bookkeeping tables); the fence table gets per-table data_inlining_row_limit 0 as commit.ts's
// ensureFence does (--fence-inline none: not set; N: set to N). --inline: the ATTACH's
// DATA_INLINING_ROW_LIMIT (default: NETPULSE_INLINING_ROW_LIMIT or 1000, as catalog.ts; 'default':
// the clause left out). --set name=value: SET GLOBAL before the ATTACH (postgres extension settings).
//
// Catalog queries: the tool starts its own PostgreSQL catalog (scripts/catalog.sh, as the tests
// do) with pg_stat_statements loaded, and after the timing runs each statement --count more times,
// reading the writer role's executed catalog statements (calls) before and after: per statement,
// how many queries DuckDB sent to PostgreSQL, and the PostgreSQL-side execution time among them.
// With NETPULSE_CATALOG set, it uses that catalog and counts nothing.
//
// --show-queries: those catalog queries, per statement. --trace: every catalog query of one more run
// of each (pg_debug_show_queries). --only a,b: just those statements (for perf record). --pool-ab
// (DuckDB 1.5): the catalog connection pool's health check on and off, in alternating blocks of 10
// of each statement in this one process (a paired comparison under the same machine load).
// The script compiles against fdfbd91 (DuckDB 1.4.4) too: copy it there to compare the two.
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LAKE, createBookkeeping, loadExtensions } from '../lake/catalog';
import { dropLake } from '../lake/admin';
import { closeInstance, createInstance, duckdbMemoryLimit, extensionSettings, sqlString } from '../lake/duckdb';
import { postgresBinDir, startDevCatalog, type DevCatalog } from '../scripts/dev-catalog';

const argv = process.argv.slice(2);
if (argv.includes('--help')) {
  console.log(`usage: node dist/bench/statement-cost.js [--n 50] [--seed-commits 20] [--rows 100] [--count 5]
       [--inline 1000|default] [--fence-inline 0|none|N] [--data-inline none|N] [--set name=value ...]
       [--label text] [--json file] [--show-queries] [--trace] [--only a,b,c,d,e,f] [--pool-ab]
Times (a) the fence read, (b) a small commit (BEGIN; INSERT rows; UPDATE fence; COMMIT), (c) a filtered
max(), (d) ATTACH + DETACH, (e) connect + USE, N times each in a row, and counts the catalog queries
each one sends (pg_stat_statements on the catalog this tool starts). See the head of bench/statement-cost.ts.`);
  process.exit(0);
}
const option = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const whole = (name: string, fallback: number): number => {
  const raw = option(name);
  const value = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`--${name}: expected a whole number ≥ 0, got "${raw}"`);
  return value;
};
const limitOption = (name: string, fallback: string, words: string[]): string => {
  const value = option(name) ?? fallback;
  if (!words.includes(value) && !/^\d+$/.test(value)) throw new Error(`--${name}: expected ${words.join(', ')} or a whole number, got "${value}"`);
  return value;
};

const N = whole('n', 50);
const SEED_COMMITS = whole('seed-commits', 20);
const ROWS = whole('rows', 100);
const COUNT = whole('count', 5);
const INLINE = limitOption('inline', process.env.NETPULSE_INLINING_ROW_LIMIT ?? '1000', ['default']);
const FENCE_INLINE = limitOption('fence-inline', '0', ['none']);
const DATA_INLINE = limitOption('data-inline', 'none', ['none']);
const SETTINGS = argv.flatMap((a, i) => (a === '--set' ? [argv[i + 1]] : [])).map((s) => {
  const m = /^([a-z_][a-z0-9_]*)=(.*)$/i.exec(s ?? '');
  if (!m) throw new Error(`--set: expected name=value, got "${s}"`);
  return { name: m[1], value: m[2] };
});
const OWNER = 'bench';
const FENCE = `lake.fence_${OWNER}`;
const DATA = 'bronze.small';

// The same SQL as lake/commit.ts's readFence.
const FENCE_READ = `
      SELECT batch_seq, batch_id, commit_message, committed_at::VARCHAR AS committed_at, result FROM ${FENCE}
      ORDER BY batch_seq DESC LIMIT 1`;
const insertRows = (seq: number) => `INSERT INTO ${DATA} SELECT ${seq}, i % 10, i * 1.5, 'row ' || i, now() FROM range(${ROWS}) r(i)`;
// commitOnce's fence update (its result JSON shortened to a fixed string of similar size).
const fenceUpdate = (seq: number) => `
      UPDATE ${FENCE} SET batch_seq = ${seq}, batch_id = ${sqlString(`${OWNER}:${seq}`)},
        commit_message = ${sqlString(`bench ${OWNER}:${seq}`)}, committed_at = now(),
        result = ${sqlString(JSON.stringify({ tables: { [DATA]: { rowsInserted: ROWS } }, event: { rowsIn: ROWS, rowsOut: ROWS, quarantined: 0 } }))}`;
const FILTERED_MAX = `SELECT max(value) FROM ${DATA} WHERE k = 7 AND seq >= 0`;

/** lake/catalog.ts's attachSql for a writer (AUTOMATIC_MIGRATION only where DuckLake knows it: 1.0). */
function attachSql(catalog: string, schema: string, dataPath: string, alias: string, ducklake10: boolean): string {
  const settings = [
    `DATA_PATH ${sqlString(dataPath.endsWith('/') ? dataPath : `${dataPath}/`)}`,
    `METADATA_SCHEMA ${sqlString(schema)}`,
    ...(INLINE === 'default' ? [] : [`DATA_INLINING_ROW_LIMIT ${INLINE}`]),
    ...(ducklake10 ? ['AUTOMATIC_MIGRATION TRUE'] : []),
  ];
  return `ATTACH ${sqlString(`ducklake:postgres:${catalog}`)} AS ${alias} (${settings.join(', ')})`;
}

/** Superuser access to the catalog this tool started (peer login over its socket), for pg_stat_statements. */
class CatalogAdmin {
  private readonly cluster: string;
  private readonly port: string;
  constructor(dev: DevCatalog) {
    this.cluster = path.join(dev.dir, 'catalog');
    this.port = /port=(\d+)/.exec(dev.connection)![1];
  }
  private asOwner(bin: string, args: string[]) {
    const command = path.join(postgresBinDir(), bin);
    const run = process.getuid?.() === 0
      ? spawnSync('runuser', ['-u', 'postgres', '--', command, ...args], { encoding: 'utf8', cwd: '/' })
      : spawnSync(command, args, { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed: ${run.stderr || run.stdout}`);
    return run.stdout;
  }
  psql(sql: string): string {
    const user = process.getuid?.() === 0 ? 'postgres' : os.userInfo().username;
    return this.asOwner('psql', ['-X', '-q', '-tA', '-F', '\t', '-h', this.cluster, '-p', this.port, '-U', user, '-d', 'netpulse', '-c', sql]);
  }
  /** Loads pg_stat_statements (a restart: shared_preload_libraries) and creates it in the lake's database. */
  enableStatements(): void {
    this.psql(`ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'`);
    this.asOwner('pg_ctl', ['restart', '-m', 'fast', '-w', '-D', this.cluster, '-l', path.join(this.cluster, 'log', 'restart.log')]);
    this.psql('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  }
  /** The writer role's executed statements so far: query text → calls, total execution ms. */
  statements(): Map<string, { calls: number; ms: number }> {
    const out = this.psql(`SELECT calls, total_exec_time, regexp_replace(query, '\\s+', ' ', 'g') FROM pg_stat_statements s
      JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = 'netpulse_writer'`);
    const map = new Map<string, { calls: number; ms: number }>();
    for (const line of out.split('\n').filter(Boolean)) {
      const [calls, ms, ...query] = line.split('\t');
      const key = query.join('\t');
      const entry = map.get(key) ?? { calls: 0, ms: 0 };
      entry.calls += Number(calls);
      entry.ms += Number(ms);
      map.set(key, entry);
    }
    return map;
  }
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
interface Stat { p50: number; p95: number; mean: number; n: number; cpuMs?: number; catalogQueries?: number; catalogMs?: number; queries?: [string, number][] }
const stats: Record<string, Stat> = {};
function record(name: string, samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  stats[name] = { ...stats[name], p50: quantile(sorted, 0.5), p95: quantile(sorted, 0.95), mean: samples.reduce((a, b) => a + b, 0) / samples.length, n: samples.length };
}

/** This process's CPU time (every thread: DuckDB's too), in ms. */
const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

async function timed(work: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await work();
  return performance.now() - t;
}

async function main() {
  const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'netpulse-stmtcost-'));
  let dev: DevCatalog | undefined;
  let instance: DuckDBInstance | undefined;
  let schema: string | undefined;
  const connections: DuckDBConnection[] = [];
  try {
    dev = process.env.NETPULSE_CATALOG ? undefined : await startDevCatalog({ setEnv: false });
    const admin = dev && COUNT > 0 ? new CatalogAdmin(dev) : undefined;
    admin?.enableStatements();
    const catalog = process.env.NETPULSE_CATALOG ?? dev!.connection;
    const lakeSchema = (schema = `stmtcost_${process.pid}`);
    const dataPath = path.join(dir, 'lake');

    // lake/catalog.ts's createLakeInstance.
    instance = await createInstance(':memory:', {
      memory_limit: duckdbMemoryLimit(), preserve_insertion_order: 'false', autoinstall_known_extensions: 'false', ...extensionSettings(),
    });
    const db = await instance.connect();
    connections.push(db);
    await loadExtensions(db);
    await db.run(`SET TimeZone = 'UTC'`);
    for (const { name, value } of SETTINGS) await db.run(`SET GLOBAL ${name} = ${value}`);
    const [[duckdbVersion]] = (await db.runAndReadAll('SELECT version()')).getRows();
    const extensions = Object.fromEntries((await db.runAndReadAll(`SELECT extension_name, extension_version FROM duckdb_extensions()
      WHERE extension_name IN ('ducklake', 'postgres_scanner') AND loaded`)).getRows().map(([n, v]) => [String(n), String(v)]));
    const ducklake10 = !String(duckdbVersion).startsWith('v1.4');
    const attach = (alias: string) => attachSql(catalog, lakeSchema, dataPath, alias, ducklake10);
    await db.run(attach(LAKE));
    await createBookkeeping(db, { catalog, catalogSchema: lakeSchema, dataPath });
    const [[format]] = (await db.runAndReadAll(`SELECT value FROM __ducklake_metadata_${LAKE}.${lakeSchema}.ducklake_metadata WHERE key = 'version'`)).getRows();

    // commit.ts's ensureFence, and a data table.
    await db.run(`CREATE TABLE IF NOT EXISTS ${FENCE} (
      owner VARCHAR NOT NULL, batch_seq BIGINT NOT NULL, batch_id VARCHAR, commit_message VARCHAR, committed_at TIMESTAMPTZ, result VARCHAR)`);
    if (FENCE_INLINE !== 'none') await db.run(`CALL ${LAKE}.set_option('data_inlining_row_limit', ${FENCE_INLINE}, schema => 'lake', table_name => 'fence_${OWNER}')`);
    await db.run(`INSERT INTO ${FENCE} SELECT ${sqlString(OWNER)}, -1, NULL, NULL, NULL, NULL WHERE NOT EXISTS (FROM ${FENCE})`);
    await db.run(`CREATE TABLE ${DATA} (seq BIGINT, k INTEGER, value DOUBLE, note VARCHAR, written_at TIMESTAMPTZ)`);
    if (DATA_INLINE !== 'none') await db.run(`CALL ${LAKE}.set_option('data_inlining_row_limit', ${DATA_INLINE}, schema => 'bronze', table_name => 'small')`);

    let seq = 0;
    const parts: Record<string, number[]> = { begin: [], insert: [], 'update fence': [], commit: [] };
    const commit = async (samples?: number[]) => {
      seq++;
      const t = performance.now();
      const steps: [string, string][] = [['begin', 'BEGIN TRANSACTION'], ['insert', insertRows(seq)], ['update fence', fenceUpdate(seq)], ['commit', 'COMMIT']];
      for (const [name, sql] of steps) {
        const ms = await timed(() => db.run(sql));
        if (samples) parts[name].push(ms);
      }
      samples?.push(performance.now() - t);
    };
    for (let i = 0; i < SEED_COMMITS; i++) await commit();

    const kinds: Record<string, () => Promise<unknown>> = {
      '(a) fence read': () => db.runAndReadAll(FENCE_READ),
      '(b) commit': () => commit(),
      '(c) filtered max()': () => db.runAndReadAll(FILTERED_MAX),
      '(d) ATTACH + DETACH': async () => {
        await db.run(attach('lake2'));
        await db.run('DETACH lake2');
      },
      // One catalog query of DuckLake's kind by hand: a postgres-scanner read of a metadata table.
      '(f) one catalog scan': () => db.runAndReadAll(`SELECT snapshot_id FROM __ducklake_metadata_${LAKE}.${lakeSchema}.ducklake_snapshot WHERE snapshot_id = 0`),
      '(e) connect + USE': async () => {
        const c = await instance!.connect();
        await c.run(`USE ${LAKE}`);
        c.closeSync();
      },
    };
    // --only a,b: just those statements (for a profiler).
    const only = option('only')?.split(',');
    if (only) for (const name of Object.keys(kinds)) if (!only.includes(name[1])) delete kinds[name];
    // Warm-up: one of each.
    for (const work of Object.values(kinds)) await work();
    for (const [name, work] of Object.entries(kinds)) {
      const samples: number[] = [];
      const cpu = cpuMs();
      if (name === '(b) commit') {
        for (const p of Object.values(parts)) p.length = 0;
        for (let i = 0; i < N; i++) await commit(samples);
        for (const [part, ms] of Object.entries(parts)) record(`    ${part}`, ms);
      } else {
        for (let i = 0; i < N; i++) samples.push(await timed(work));
      }
      record(name, samples);
      stats[name].cpuMs = (cpuMs() - cpu) / N;
    }

    // --pool-ab: the catalog pool's health check on and off (postgres_configure_pool, 1.5 only) in
    // alternating blocks of 10 of each statement in this one process: a paired comparison under the same load.
    if (argv.includes('--pool-ab')) {
      const metadata = `__ducklake_metadata_${LAKE}`;
      const modes: [string, string][] = [['health check on', 'SELECT 1'], ['health check off', '']];
      const ab: Record<string, number[]> = {};
      for (let round = 0; round < Math.max(1, Math.round(N / 10)); round++) {
        for (const [mode, query] of round % 2 ? [...modes].reverse() : modes) {
          await db.run(`FROM postgres_configure_pool(catalog_name => ${sqlString(metadata)}, health_check_query => ${sqlString(query)})`);
          for (const [name, work] of Object.entries(kinds)) {
            if (!['a', 'b', 'c', 'f'].includes(name[1])) continue;
            for (let i = 0; i < 10; i++) (ab[`${name} [${mode}]`] ??= []).push(await timed(work));
          }
        }
      }
      await db.run(`FROM postgres_configure_pool(catalog_name => ${sqlString(metadata)}, health_check_query => 'SELECT 1')`);
      for (const [name, samples] of Object.entries(ab).sort(([x], [y]) => x.localeCompare(y))) record(name, samples);
    }

    if (admin) {
      type Snapshot = Map<string, { calls: number; ms: number }>;
      const tally = new Map<string, Map<string, { calls: number; ms: number }>>();
      const add = (name: string, before: Snapshot, after: Snapshot) => {
        const into = tally.get(name) ?? new Map<string, { calls: number; ms: number }>();
        tally.set(name, into);
        for (const [query, v] of after) {
          const was = before.get(query) ?? { calls: 0, ms: 0 };
          if (v.calls <= was.calls) continue;
          const entry = into.get(query) ?? { calls: 0, ms: 0 };
          entry.calls += v.calls - was.calls;
          entry.ms += v.ms - was.ms;
          into.set(query, entry);
        }
      };
      for (const [name, work] of Object.entries(kinds)) {
        if (name === '(b) commit') continue;
        const before = admin.statements();
        for (let i = 0; i < COUNT; i++) await work();
        add(name, before, admin.statements());
      }
      // The commit step by step (the catalog read between steps, from another connection).
      for (let i = 0; i < (kinds['(b) commit'] ? COUNT : 0); i++) {
        seq++;
        const start = admin.statements();
        let before = start;
        for (const [name, sql] of [['begin', 'BEGIN TRANSACTION'], ['insert', insertRows(seq)], ['update fence', fenceUpdate(seq)], ['commit', 'COMMIT']]) {
          await db.run(sql);
          const after = admin.statements();
          add(`    ${name}`, before, after);
          before = after;
        }
        add('(b) commit', start, before);
      }
      for (const [name, queries] of tally) {
        const list = [...queries].map(([q, v]) => [q, v.calls / COUNT, v.ms / COUNT] as const).sort((x, y) => y[1] - x[1]);
        stats[name].catalogQueries = list.reduce((n, d) => n + d[1], 0);
        stats[name].catalogMs = list.reduce((n, d) => n + d[2], 0);
        stats[name].queries = list.map(([q, calls]) => [q.slice(0, 300), calls]);
      }
    }

    if (argv.includes('--trace')) {
      // Every catalog query of one more run of each statement, printed by the postgres extension.
      await db.run('SET pg_debug_show_queries = true');
      for (const [name, work] of Object.entries(kinds)) {
        console.log(`\n===== ${name}`);
        await work();
      }
      await db.run('SET pg_debug_show_queries = false');
    }

    const label = option('label') ?? '';
    const settingsText = [`inline ${INLINE}`, `fence-inline ${FENCE_INLINE}`, `data-inline ${DATA_INLINE}`, ...SETTINGS.map((s) => `${s.name}=${s.value}`)].join(', ');
    console.log(`${label ? `${label}: ` : ''}DuckDB ${duckdbVersion}, ducklake ${extensions.ducklake}, postgres_scanner ${extensions.postgres_scanner}, DuckLake format ${format}; ${settingsText}; `
      + `n=${N}, seed commits ${SEED_COMMITS}, ${ROWS} rows per commit; load average at start ${load}, at end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    console.log('| statement | p50 ms | p95 ms | mean ms | client CPU ms | catalog queries | catalog exec ms |');
    console.log('|---|---|---|---|---|---|---|');
    for (const [name, s] of Object.entries(stats)) {
      console.log(`| ${name.trim().startsWith('(') ? name : `↳ ${name.trim()}`} | ${s.p50.toFixed(1)} | ${s.p95.toFixed(1)} | ${s.mean.toFixed(1)} | ${s.cpuMs?.toFixed(1) ?? '–'} | ${s.catalogQueries?.toFixed(1) ?? '–'} | ${s.catalogMs?.toFixed(2) ?? '–'} |`);
    }
    if (argv.includes('--show-queries')) {
      for (const [name, s] of Object.entries(stats)) {
        if (!s.queries?.length) continue;
        console.log(`\n${name.trim()}: catalog queries per statement`);
        for (const [q, calls] of s.queries) console.log(`  ${calls.toFixed(1).padStart(5)}×  ${q}`);
      }
    }
    const json = option('json');
    if (json) {
      writeFileSync(json, JSON.stringify({
        label, duckdb: duckdbVersion, extensions, format, settings: { inline: INLINE, fenceInline: FENCE_INLINE, dataInline: DATA_INLINE, set: SETTINGS },
        n: N, seedCommits: SEED_COMMITS, rows: ROWS, loadStart: load, loadEnd: os.loadavg(), stats,
      }, null, 2));
    }
  } finally {
    for (const c of connections) c.closeSync();
    if (instance) closeInstance(instance);
    if (dev) await dev.stop();
    else if (schema) await dropLake({ catalog: process.env.NETPULSE_CATALOG!, catalogSchema: schema, dataPath: path.join(dir, 'lake') });
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
