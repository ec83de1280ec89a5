// The silver limit: silver's semantics in plain DuckDB over all the landing's files at once — one
// native DuckDB file, no DuckLake, no batches, no Temporal — as the limit silver + gold is measured
// against (as bronze is against one INSERT … SELECT FROM read_parquet).
//
//   node dist/bench/silver-limit.js --size medium [--shuffle-hours 20] [--devices 0] [--duckdb-threads N]
//   node dist/bench/silver-limit.js --landing <dir>
//
// The same silver: the landing's fields typed from text (typedFieldsSql), every rule of SILVER_RULES
// (checkedRowsSql), redeliveries dropped on (ip, dispositivo, hora_conexao, status) keeping the first
// delivery (redeliveriesSql), the events, the quarantine and the latest state per device
// (ip, dispositivo; latestPerDeviceSql) written to silver's own tables (tableDdl). What one silver
// batch over every file would do:
// - late_event: silver's watermark follows the newest event accepted before the batch, and a first
//   batch has none: the watermark is -infinity and no event is late. (The pipeline's later batches
//   have a watermark; on the bench's landings every event is inside it — 20 hours against 24 — so
//   both quarantine the same rows.)
// - first delivery: bronze takes each source's files oldest first (modification time, then path),
//   so the order of delivery is the file's place in that order, then its row (a bronze commit's place
//   in the pipeline); with all files in one batch there is no earlier event in silver to drop against.
// - source_table: the bronze table of the source whose folder holds the file (DEFAULT_SOURCES).
// Memory: the machine's, as DuckDB takes by default (80 % of it), not a worker's 256 MB: the limit
// is what one machine can do; netpulse's batches are what lets its workers run in 256 MB each.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { closeInstance, createInstance, sqlString, threadSettings } from '../lake/duckdb';
import { describe } from '../lake/changes';
import { checkedRowsSql, typedFieldsSql } from '../activities/silver-input';
import { latestPerDeviceSql, newEventsSql, passingEventsSql, redeliveriesSql } from '../activities/silver';
import { tableDdl } from '../lake/silver-layout';
import { silverShardTables } from '../rules/shards';
import { DEFAULT_SOURCES } from '../rules/bronze';
import { silverOptionsSchema, type SilverOptions } from '../rules/silver';
import { SIZES, writeSizeLanding } from './harness';

export interface SilverLimit {
  seconds: number;
  rows: number;
  rowsPerSec: number;
  events: number;
  quarantined: number;
  duplicates: number;
  devices: number;
}

const BATCH_ID = 'limit:0';
/** A one-shard lake's tables: silver.events, silver.quarantine, silver.device_state. */
const TABLES = silverShardTables();

/** The bronze table a landing file goes to: its source's (the folder it is in, under `landingRoot`). */
function sourceTable(landingRoot: string, file: string): string {
  const folder = path.relative(landingRoot, path.dirname(file)).split(path.sep).join('/');
  const source = DEFAULT_SOURCES.find((s) => s.path === folder);
  return `bronze.${source?.name ?? 'unknown'}`;
}

/**
 * The landing files as silver's feed (the columns bronzeFeedSql gives): the files' own fields, and
 * per file its modification time (bronze's data_arquivo_ingestao), path, source table and place in
 * bronze's order of delivery (for bronze_snapshot).
 */
async function landingFeedSql(db: DuckDBConnection, landingRoot: string, files: string[]): Promise<string> {
  const ordered = files.map((file) => ({ file, mtimeMs: Math.floor(statSync(file).mtimeMs) }))
    .sort((a, b) => a.mtimeMs - b.mtimeMs || (a.file < b.file ? -1 : 1));
  const read = `read_parquet([${ordered.map((f) => sqlString(f.file)).join(', ')}], union_by_name = true, filename = true, file_row_number = true)`;
  const types = new Map(await describe(db, read));
  const perFile = (values: string[]) => `[${values.join(', ')}][b.file_index::BIGINT + 1]`;
  return `
    SELECT ${typedFieldsSql(types)},
           make_timestamp(${perFile(ordered.map((f) => String(f.mtimeMs)))} * 1000) AS file_mtime, b.filename AS source_file,
           b.file_row_number AS file_row, ${perFile(ordered.map((f) => sqlString(sourceTable(landingRoot, f.file))))} AS source_table,
           b.file_index::BIGINT AS bronze_snapshot, NULL::BIGINT AS bronze_rowid, NULL::VARCHAR AS requeued_raw
    FROM ${read} AS b`;
}

/**
 * Silver over every file under `landingRoot` at once into a fresh DuckDB file `dbFile`: typed and
 * checked rows, the quarantine (with each failing row as JSON, read back from its file as silver
 * reads it back from bronze), the events without redeliveries, the latest state per device, and a
 * checkpoint. Seconds from the first statement to the checkpoint's end.
 */
export async function silverLimit(landingRoot: string, files: string[], dbFile: string, options: SilverOptions = silverOptionsSchema.parse({}), threads?: number): Promise<SilverLimit> {
  const instance = await createInstance(dbFile, {
    memory_limit: `${Math.floor((os.totalmem() * 0.8) / 2 ** 20)}MB`, preserve_insertion_order: 'false', ...(threads ? { threads: String(threads) } : threadSettings()),
  });
  const db = await instance.connect();
  try {
    await db.run(`CREATE SCHEMA IF NOT EXISTS silver; ${tableDdl(TABLES)}`);
    const feed = await landingFeedSql(db, landingRoot, files);
    const t = performance.now();
    // A single batch over everything: no event accepted before it, so no watermark (see the top).
    await db.run(`SET VARIABLE silver_watermark = '-infinity'::TIMESTAMP`);
    await db.run(`CREATE TEMP TABLE silver_checked AS ${checkedRowsSql([feed], options)}`);
    const [[rows, failing]] = (await db.runAndReadAll('SELECT count(*), count(*) FILTER (len(failed_rules) > 0) FROM silver_checked')).getRows();
    if (Number(failing) > 0) {
      await db.run(`
        INSERT INTO ${TABLES.quarantine}
        SELECT c.failed_rules[1], c.failed_rules, to_json(f)::VARCHAR, c.source_table, c.source_file, c.bronze_snapshot, ${sqlString(BATCH_ID)}
        FROM silver_checked c JOIN read_parquet([${files.map(sqlString).join(', ')}], union_by_name = true, filename = true, file_row_number = true) f
          ON f.filename = c.source_file AND f.file_row_number = c.file_row
        WHERE len(c.failed_rules) > 0`);
    }
    await db.run(`
      CREATE TEMP TABLE dropped_events (checked_row BIGINT);
      CREATE TEMP VIEW passing_events AS ${passingEventsSql('silver_checked')};
      INSERT INTO dropped_events ${redeliveriesSql('passing_events')};`);
    const events = (await db.run(`INSERT INTO ${TABLES.events} BY NAME ${newEventsSql('passing_events', 'dropped_events', BATCH_ID)}`)).rowsChanged;
    const devices = (await db.run(`INSERT INTO ${TABLES.deviceState} BY NAME ${latestPerDeviceSql(TABLES.events)}`)).rowsChanged;
    await db.run('CHECKPOINT');
    const seconds = (performance.now() - t) / 1000;
    const total = Number(rows);
    return {
      seconds, rows: total, rowsPerSec: Math.round(total / seconds), events, quarantined: Number(failing), duplicates: total - Number(failing) - events, devices,
    };
  } finally {
    db.closeSync();
    closeInstance(instance);
  }
}

/** Every parquet file under `dir`. */
function parquetFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.parquet')).map((e) => path.join(e.parentPath, e.name));
}

/** Silver's limit on the landing files under `landingRoot`, in a DuckDB file in a temp folder of its own (deleted after). */
export async function timeSilverLimit(landingRoot: string, files = parquetFiles(landingRoot), threads?: number): Promise<SilverLimit> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'netpulse-silver-limit-'));
  try {
    return await silverLimit(landingRoot, files, path.join(dir, 'limit.duckdb') /* not silver.duckdb: its catalog would share the schema's name */, undefined, threads);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const threads = arg('duckdb-threads');
  if (threads !== undefined) process.env.NETPULSE_DUCKDB_THREADS = threads;
  let landing = arg('landing');
  let made: string | undefined;
  if (!landing) {
    const size = arg('size') ?? 'medium';
    const spec = SIZES[size];
    if (!spec) throw new Error(`--size: unknown size "${size}" (${Object.keys(SIZES).join(', ')})`);
    made = mkdtempSync(path.join(os.tmpdir(), `netpulse-silver-limit-landing-${size}-`));
    landing = path.join(made, 'landing');
    await writeSizeLanding(landing, spec, { shuffleHours: Number(arg('shuffle-hours') ?? '0'), devices: Number(arg('devices') ?? '0') });
  }
  try {
    const limit = await timeSilverLimit(landing);
    console.log(JSON.stringify(limit, null, 2));
  } finally {
    if (made) rmSync(made, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
