// The lake: DuckLake (Parquet data files + a PostgreSQL catalog). Every process attaches on
// its own — workers read-write, the CLI, the dashboard and notebooks read-only — so no process
// owns the lake. One DuckDB instance per lake per process: LOAD + ATTACH cost ~0.7 s, a new
// connection on an attached instance ~20 ms.
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { mkdirSync } from 'node:fs';
import { config } from '../config';
import { closeInstance, createInstance, duckdbMemoryLimit, explainOutOfMemory, extensionSettings, sqlIdentifier, sqlString, threadSettings } from './duckdb';
import { convertLegacyInlinedData } from './migrate';
import { isObjectUrl, isRemotePath, useObjectStore } from './object-store';

export interface LakeConfig {
  /** libpq connection string of the PostgreSQL catalog database, as the writer role. */
  catalog: string;
  /** The same as the reader role (SELECT only), used by read-only attachments; else `catalog`. */
  readerCatalog?: string;
  /** PostgreSQL schema holding this lake's DuckLake metadata (several lakes can share a database). */
  catalogSchema: string;
  /** Where the Parquet data files go: a folder, or s3://bucket/prefix/ (lake/object-store.ts). */
  dataPath: string;
}

export interface AttachOptions {
  readOnly?: boolean;
  /**
   * Reader sandbox: no file access outside the lake's data path, no re-enabling it, no other
   * database attached (the CLI's `query`, the dashboard).
   */
  sandbox?: boolean;
}

/** The attached DuckLake's name; `USE netpulse` makes bronze.x, silver.x, gold.x, lake.x resolve in it. */
export const LAKE = 'netpulse';

/** Small commits (continuous micro-batches) stay in the catalog instead of one Parquet file each. */
const INLINING_ROW_LIMIT = Number(process.env.NETPULSE_INLINING_ROW_LIMIT ?? 1000);

export const lakeFromEnv = (): LakeConfig => ({
  catalog: config.catalog, readerCatalog: config.readerCatalog, catalogSchema: config.catalogSchema, dataPath: config.dataPath,
});

const BOOKKEEPING_DDL = `
CREATE SCHEMA IF NOT EXISTS lake;
CREATE SCHEMA IF NOT EXISTS bronze;
CREATE SCHEMA IF NOT EXISTS silver;
CREATE SCHEMA IF NOT EXISTS gold;
-- Which batch introduced which column (DuckLake versions the schema; this says why).
CREATE TABLE IF NOT EXISTS lake.schema_versions (
  table_name     VARCHAR NOT NULL,
  schema_version INTEGER NOT NULL,
  batch_id       VARCHAR NOT NULL,
  column_name    VARCHAR NOT NULL,
  column_type    VARCHAR NOT NULL,
  added_at       TIMESTAMPTZ NOT NULL
);
-- Every landing file a table has taken, ingested or quarantined: never taken twice (the role of
-- Auto Loader's RocksDB).
CREATE TABLE IF NOT EXISTS lake.file_ledger (
  table_name VARCHAR NOT NULL,
  path       VARCHAR NOT NULL,
  size_bytes BIGINT NOT NULL,
  mtime_ms   BIGINT NOT NULL,
  outcome    VARCHAR NOT NULL,
  batch_id   VARCHAR NOT NULL,
  taken_at   TIMESTAMPTZ NOT NULL
);
-- One row per committed batch and per pipeline pass: what ran, where, how much, how long.
CREATE TABLE IF NOT EXISTS lake.event_log (
  logged_at        TIMESTAMPTZ NOT NULL,
  kind             VARCHAR NOT NULL,
  layer            VARCHAR NOT NULL,
  source           VARCHAR NOT NULL,
  batch_id         VARCHAR,
  rows_in          BIGINT,
  rows_out         BIGINT,
  rows_quarantined BIGINT,
  duration_ms      BIGINT,
  workflow_id      VARCHAR,
  run_id           VARCHAR,
  details          VARCHAR
);
-- Landing files that could not be read, with the reason.
CREATE TABLE IF NOT EXISTS bronze.quarantine (
  table_name     VARCHAR NOT NULL,
  path           VARCHAR NOT NULL,
  error          VARCHAR NOT NULL,
  batch_id       VARCHAR NOT NULL,
  quarantined_at TIMESTAMPTZ NOT NULL
);
`;

export async function loadExtensions(db: DuckDBConnection): Promise<void> {
  for (const name of ['ducklake', 'postgres']) {
    try {
      await db.run(`LOAD ${name}`);
    } catch (error) {
      // Not installed offline by scripts/setup.sh: where the internet is reachable, DuckDB can.
      try {
        await db.run(`INSTALL ${name}; LOAD ${name}`);
      } catch {
        throw new Error(`DuckDB extension ${name} is not installed (run bash scripts/setup.sh): ${(error as Error).message.split('\n')[0]}`);
      }
    }
  }
}

/** Read-only attachments log in as the reader role: the database's own privileges are the wall. */
function catalogFor(lake: LakeConfig, options: AttachOptions): string {
  return options.readOnly ? lake.readerCatalog ?? lake.catalog : lake.catalog;
}

function attachSql(lake: LakeConfig, options: AttachOptions): string {
  const dataPath = lake.dataPath.endsWith('/') ? lake.dataPath : `${lake.dataPath}/`;
  const settings = [
    // A reader takes the data path the catalog has (a folder or s3://…): it need not be told.
    ...(options.readOnly ? [] : [`DATA_PATH ${sqlString(dataPath)}`]),
    `METADATA_SCHEMA ${sqlString(lake.catalogSchema)}`,
    // A writer migrates a lake of an older DuckLake format on its first attach (0.3 → 1.0: new
    // catalog columns and tables, in one catalog transaction); readers cannot, and say so.
    ...(options.readOnly ? ['READ_ONLY'] : [`DATA_INLINING_ROW_LIMIT ${INLINING_ROW_LIMIT}`, 'AUTOMATIC_MIGRATION TRUE']),
  ];
  return `ATTACH ${sqlString(`ducklake:postgres:${catalogFor(lake, options)}`)} AS ${LAKE} (${settings.join(', ')})`;
}

const instances = new Map<string, Promise<DuckDBInstance>>();

/** A libpq connection string fit for messages and logs: its password hidden. */
export function redactCatalog(catalog: string): string {
  return catalog.replace(/password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)/g, 'password=***');
}

/** The lake's PostgreSQL catalog did not answer (down, wrong address, refused the login). */
export class CatalogUnreachableError extends Error {}

/** A read-only attach found a lake in an older DuckLake format: only a writer can migrate it. */
export class LakeNeedsMigrationError extends Error {}

/** A read-only attach found no lake in the catalog schema: no worker has created it yet. */
export class LakeNotCreatedError extends Error {}

/**
 * Attaches the lake. Two processes attaching a new lake at once both try to create its
 * metadata tables and one fails ("already exists"); attached again, it finds the lake.
 * DuckDB's own attach errors quote the connection string, password included: the two we can
 * name come back without it.
 */
async function attach(db: DuckDBConnection, lake: LakeConfig, options: AttachOptions): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await db.run(attachSql(lake, options));
      return;
    } catch (error) {
      const message = (error as Error).message;
      const refused = /Unable to connect to Postgres at "[^"]*": ([^\n]*)/.exec(message);
      if (refused) throw new CatalogUnreachableError(`cannot reach the lake's catalog at ${redactCatalog(catalogFor(lake, options))} (${refused[1]})`);
      const older = /catalog version is ([0-9.]+)[^\n]*requires version ([0-9.]+)|Failed to migrate DuckLake from v?([0-9.]+)/.exec(message);
      if (older && options.readOnly) {
        throw new LakeNeedsMigrationError(`the lake (catalog schema ${lake.catalogSchema}) is in DuckLake format ${older[1] ?? older[3]}; `
          + 'a worker (the writer role) migrates it on its first attach: start one (bash scripts/up.sh, netpulse worker) or run a pass, then read again');
      }
      if (/creating a new DuckLake is explicitly disabled/.test(message)) {
        throw new LakeNotCreatedError(`the lake (catalog schema ${lake.catalogSchema}) does not exist yet: run a pass first (netpulse run, or bash scripts/up.sh)`);
      }
      if (attempt >= 5 || !/already exists|duplicate key/.test(message)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
    }
  }
}

async function createLakeInstance(lake: LakeConfig, options: AttachOptions): Promise<DuckDBInstance> {
  if (!options.readOnly && !isRemotePath(lake.dataPath)) mkdirSync(lake.dataPath, { recursive: true });
  const instance = await createInstance(':memory:', {
    // Bounded memory: DuckDB spills past the limit (into a folder of this instance's) instead of growing the worker.
    memory_limit: duckdbMemoryLimit(),
    // The lake's instance is where a worker's batches run: NETPULSE_DUCKDB_THREADS applies here as in openInstance.
    ...threadSettings(),
    preserve_insertion_order: 'false',
    autoinstall_known_extensions: 'false',
    ...extensionSettings(),
  });
  const db = await instance.connect();
  try {
    await loadExtensions(db);
    // The lake's files, or the landing zone a worker reads, on object storage: httpfs and a key.
    if (usesObjectStore(lake)) await useObjectStore(db, options.readOnly ? 'read' : 'write');
    // Commit, event and snapshot times read back the same on every machine (events are UTC).
    await db.run(`SET TimeZone = 'UTC'`);
    await attach(db, lake, options);
    if (!options.readOnly) {
      await convertLegacyInlinedData(db, lake.catalog, lake.catalogSchema);
      await createBookkeeping(db, lake);
    }
    if (options.sandbox) {
      const [[dataPath]] = (await db.runAndReadAll(`SELECT value FROM ducklake_options(${sqlString(LAKE)}) WHERE option_name = 'data_path'`)).getRows();
      const allowed = [String(dataPath), config.extensionDir].map(sqlString).join(', ');
      await db.run(`SET allowed_directories = [${allowed}]`);
      await db.run('SET enable_external_access = false');
      await db.run('SET lock_configuration = true');
    }
  } catch (error) {
    db.closeSync();
    closeInstance(instance); // openLake forgets it: nothing else would close it
    throw error;
  }
  db.closeSync();
  return instance;
}

/** The lake's data path or this process's landing zone is on object storage, or a store is configured. */
function usesObjectStore(lake: LakeConfig): boolean {
  const env = process.env;
  return isObjectUrl(lake.dataPath) || isObjectUrl(config.landingDir)
    || Boolean(env.NETPULSE_S3_ENDPOINT || env.AWS_ACCESS_KEY_ID || env.NETPULSE_S3_READER_ACCESS_KEY_ID);
}

/** Several processes may create the schemas at once: a conflicting CREATE is retried. */
export async function createBookkeeping(db: DuckDBConnection, lake: LakeConfig): Promise<void> {
  await db.run(`USE ${LAKE}`);
  for (let attempt = 1; ; attempt++) {
    try {
      await db.run(BOOKKEEPING_DDL);
      await partitionLedger(db, lake);
      await writeParquetV2(db);
      return;
    } catch (error) {
      if (attempt >= 5) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
    }
  }
}

/**
 * The ledger is partitioned by bronze table, so each of its data files holds one source's paths,
 * in landing (time) order: planning then reads only the files and row groups its listing's path
 * range can be in, however long the ledger grows (bench/profile.ts --ledger-rows).
 */
async function partitionLedger(db: DuckDBConnection, lake: LakeConfig): Promise<void> {
  const meta = (name: string) => `__ducklake_metadata_${LAKE}.${sqlIdentifier(lake.catalogSchema)}.${sqlIdentifier(name)}`;
  const [[partitions]] = (await db.runAndReadAll(`
    SELECT count(*) FROM ${meta('ducklake_partition_info')} p JOIN ${meta('ducklake_table')} t USING (table_id)
    WHERE t.table_name = 'file_ledger' AND t.end_snapshot IS NULL AND p.end_snapshot IS NULL`)).getRows();
  if (Number(partitions) > 0) return;
  await db.run('ALTER TABLE lake.file_ledger SET PARTITIONED BY (table_name)');
  // Small row groups: a path range then reads a few thousand rows, not the source's whole file.
  await db.run(`CALL ${LAKE}.set_option('parquet_row_group_size', 8192, schema => 'lake', table_name => 'file_ledger')`);
}

/**
 * The lake writes Parquet format version 2: it encodes the lake's ids, times and repeated text
 * more tightly than version 1. Measured on the maintenance test's lake (test/lake.test.ts, three
 * bronze batches of 1,500 rows and a flushed micro-batch of 120): bronze's files 214.3 KiB as v1,
 * 171.0 KiB as v2; the whole lake after maintenance 724.0 KiB against 658.9 KiB. (DuckLake 0.3
 * also wrote a row id per row when merging such files, which v1 stored plainly; 1.0 does not.)
 * Processes attached before the option was set write version 1 until they attach again.
 */
async function writeParquetV2(db: DuckDBConnection): Promise<void> {
  const [[version]] = (await db.runAndReadAll(`SELECT any_value(value) FROM ducklake_options(${sqlString(LAKE)})
    WHERE option_name = 'parquet_version' AND scope = 'GLOBAL'`)).getRows();
  if (String(version).toUpperCase() !== 'V2') await db.run(`CALL ${LAKE}.set_option('parquet_version', 2)`);
}

function lakeKey(lake: LakeConfig, options: AttachOptions): string {
  return JSON.stringify([catalogFor(lake, options), lake.catalogSchema, lake.dataPath, Boolean(options.readOnly), Boolean(options.sandbox)]);
}

export function openLake(lake: LakeConfig, options: AttachOptions = {}): Promise<DuckDBInstance> {
  const key = lakeKey(lake, options);
  let instance = instances.get(key);
  if (!instance) {
    instance = createLakeInstance(lake, options);
    instances.set(key, instance);
    instance.catch(() => instances.delete(key));
  }
  return instance;
}

const lakeOfConnection = new WeakMap<DuckDBConnection, LakeConfig>();

/** The lake a connection of withLake's is attached to. */
export function lakeOf(db: DuckDBConnection): LakeConfig {
  const lake = lakeOfConnection.get(db);
  if (!lake) throw new Error('not a lake connection (use withLake)');
  return lake;
}

/** One lake's identity in this process's caches, whatever the attachment's options. */
export const lakeId = (lake: LakeConfig) => lakeKey(lake, {});

/** Told when a statement inside withLake fails: per-process caches forget what may be stale (lake/tables.ts). */
const failureListeners: ((lake: LakeConfig, error: unknown) => void)[] = [];
export function onLakeFailure(listener: (lake: LakeConfig, error: unknown) => void): void {
  failureListeners.push(listener);
}
/** What a reader changes when a read runs out of memory. */
const READ_REMEDY = 'ask for less (fewer rows or columns, an aggregate instead of the rows, a narrower time range)';

/**
 * libpq's words for a catalog connection that is gone or cannot be made: the PostgreSQL server
 * restarted (its pooled connections are stale), stopped, or cannot be reached.
 */
const CATALOG_CONNECTION_LOST = /server closed the connection unexpectedly|terminating connection due to administrator command|no connection to the server|could not receive data from server|could not send data to server|SSL SYSCALL error|connection to server at .* failed|could not connect to server|Connection refused|the database system is (starting up|shutting down|in recovery mode)/;
/** A statement that failed with no reason at all: libpq's connection broke under it (a COMMIT killed by the server's restart). */
const CATALOG_STATEMENT_CUT = /Failed to execute query "[^"]*":\s*$/;

/** The catalog connection behind `error` is lost, said without its password; else undefined. */
function lostCatalog(error: unknown, lake: LakeConfig, options: AttachOptions): CatalogUnreachableError | undefined {
  if (error instanceof CatalogUnreachableError) return error;
  const message = (error as { message?: unknown } | undefined)?.message;
  if (typeof message !== 'string') return undefined;
  const lost = CATALOG_CONNECTION_LOST.exec(message);
  if (!lost && !CATALOG_STATEMENT_CUT.test(message)) return undefined;
  const reason = lost ? lost[0] : 'the connection broke under a statement';
  return new CatalogUnreachableError(`cannot reach the lake's catalog at ${redactCatalog(catalogFor(lake, options))} (${reason})`, { cause: error });
}

/**
 * Runs `work` on a fresh connection to the lake (catalog `netpulse` in use) and closes it. A lost
 * catalog connection (PostgreSQL restarted, stopped or unreachable) comes back as
 * CatalogUnreachableError, naming the catalog; the attachment stays, and its pooled catalog
 * connections reconnect once PostgreSQL is back (test/ducklake-issues.test.ts, issue 6).
 */
export async function withLake<T>(lake: LakeConfig, work: (db: DuckDBConnection) => Promise<T>, options: AttachOptions = {}): Promise<T> {
  const connection = await (await openLake(lake, options)).connect();
  lakeOfConnection.set(connection, lake);
  try {
    await connection.run(`USE ${LAKE}`);
    return await work(connection);
  } catch (error) {
    for (const listener of failureListeners) listener(lake, error);
    throw lostCatalog(error, lake, options) ?? explainOutOfMemory(error, options.readOnly ? READ_REMEDY : undefined);
  } finally {
    connection.closeSync();
  }
}

/**
 * A DuckLake metadata table in the catalog (ducklake_snapshot, ducklake_snapshot_changes, …).
 * Filters on it run in PostgreSQL, where the snapshots() table function builds every snapshot
 * on each call (31 ms at 2,000 snapshots against 6 ms here, and growing with history).
 */
export function metadataTable(db: DuckDBConnection, name: string): string {
  return `__ducklake_metadata_${LAKE}.${sqlIdentifier(lakeOf(db).catalogSchema)}.${sqlIdentifier(name)}`;
}

/** Detaches every lake this process attached (worker shutdown, test teardown). */
export async function closeLakes(): Promise<void> {
  const all = [...instances.values()];
  instances.clear();
  for (const instance of all) {
    const opened = await instance.catch(() => undefined);
    if (opened) closeInstance(opened);
  }
}

/** The oldest snapshot the lake still keeps (maintenance expires older ones). */
export async function oldestSnapshot(db: DuckDBConnection): Promise<number> {
  const rows = (await db.runAndReadAll(`SELECT min(snapshot_id) FROM ${metadataTable(db, 'ducklake_snapshot')}`)).getRows();
  return Number(rows[0]?.[0] ?? 0);
}
