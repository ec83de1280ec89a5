// Runtime settings read from the environment, in one place, for the worker and the CLI.
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { resolveLocation } from './lake/object-store';
import { MAX_SILVER_SHARDS, shardCountSchema } from './rules/shards';

/**
 * How to reach Temporal: the SDK's environment configuration (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
 * TEMPORAL_API_KEY, TEMPORAL_TLS*, or a profile in temporal.toml via TEMPORAL_PROFILE and
 * TEMPORAL_CONFIG_FILE), so any Temporal service works; the local dev server by default.
 */
const temporal = loadClientConnectConfig();
const { address: _address, ...temporalSecurity } = temporal.connectionOptions;

/**
 * scripts/catalog.sh's local cluster, as one of the lake's two roles. libpq (inside DuckDB's
 * postgres extension) takes the password from the file catalog.sh made (passfile), so no password
 * is ever in a connection string, an environment listing or a log.
 */
function localCatalog(role: 'writer' | 'reader'): string {
  const passfile = path.join(config.dataDir, 'secrets', 'pgpass');
  return `host=127.0.0.1 port=${process.env.NETPULSE_CATALOG_PORT ?? '5433'} dbname=netpulse user=netpulse_${role}`
    + (existsSync(passfile) ? ` passfile=${passfile}` : '');
}

const root = path.resolve(__dirname, __dirname.endsWith(`${path.sep}dist`) ? '..' : '.');

export const config = {
  projectRoot: root,
  temporalAddress: temporal.connectionOptions.address ?? `127.0.0.1:${process.env.TEMPORAL_PORT ?? '7233'}`,
  namespace: temporal.namespace ?? 'default',
  /** TLS / mTLS, API key and gRPC metadata for every connection to Temporal (none for the dev server). */
  temporalSecurity,
  taskQueue: process.env.NETPULSE_TASK_QUEUE ?? 'netpulse',
  uiUrl: `http://localhost:${process.env.TEMPORAL_UI_PORT ?? '8233'}`,
  dataDir: path.resolve(process.env.NETPULSE_DATA_DIR ?? path.join(root, 'data')),
  /** The landing zone: a folder, or an object-store prefix (s3://bucket/landing). */
  get landingDir(): string {
    return resolveLocation(process.env.NETPULSE_LANDING_DIR ?? path.join(this.dataDir, 'landing'));
  },
  /**
   * Folders and s3:// prefixes landing zones may lie under (NETPULSE_LANDING_ROOTS, separated by the
   * path delimiter); default the data folder and the landing zone.
   */
  get landingRoots(): string[] {
    const roots = process.env.NETPULSE_LANDING_ROOTS?.match(new RegExp(`s3://[^${path.delimiter}]+|[^${path.delimiter}]+`, 'g'));
    return roots?.length ? roots.map(resolveLocation) : [this.dataDir, this.landingDir];
  },
  /** The lake's PostgreSQL catalog as the writer role (libpq string); default: scripts/catalog.sh's local cluster. */
  get catalog(): string {
    return process.env.NETPULSE_CATALOG ?? localCatalog('writer');
  },
  /**
   * The same catalog as the reader role (SELECT only), for every read-only attachment: the CLI's
   * reads, the dashboard. With an external NETPULSE_CATALOG and no NETPULSE_CATALOG_READER,
   * readers use NETPULSE_CATALOG's role.
   */
  get readerCatalog(): string {
    return process.env.NETPULSE_CATALOG_READER ?? process.env.NETPULSE_CATALOG ?? localCatalog('reader');
  },
  /** PostgreSQL schema of the lake's metadata: several lakes can share one catalog database. */
  get catalogSchema(): string {
    return process.env.NETPULSE_CATALOG_SCHEMA ?? 'netpulse';
  },
  /** The lake's Parquet files: a folder, or s3://bucket/prefix/ (DuckDB's httpfs; lake/object-store.ts). */
  get dataPath(): string {
    return resolveLocation(process.env.NETPULSE_DATA_PATH ?? path.join(this.dataDir, 'lake'));
  },
  /**
   * Silver shards asked for (NETPULSE_SILVER_SHARDS); undefined when unset: a new lake then gets
   * rules/shards.ts's default and an existing lake keeps its own count.
   */
  get silverShards(): number | undefined {
    const raw = process.env.NETPULSE_SILVER_SHARDS;
    if (raw === undefined || raw.trim() === '') return undefined;
    const parsed = shardCountSchema.safeParse(Number(raw));
    if (!/^\s*\d+\s*$/.test(raw) || !parsed.success) throw new Error(`NETPULSE_SILVER_SHARDS: "${raw}" is not a whole number from 1 to ${MAX_SILVER_SHARDS}`);
    return parsed.data;
  },
  /** Silver batches a worker process runs at once (NETPULSE_SILVER_BATCHES_PER_WORKER, ≥ 1): each needs its share of NETPULSE_DUCKDB_MEMORY. */
  get silverBatchesPerWorker(): number {
    const raw = process.env.NETPULSE_SILVER_BATCHES_PER_WORKER ?? '1';
    const n = Number(raw);
    if (!/^\s*\d+\s*$/.test(raw) || !Number.isSafeInteger(n) || n < 1) throw new Error(`NETPULSE_SILVER_BATCHES_PER_WORKER: "${raw}" is not a whole number ≥ 1`);
    return n;
  },
  extensionDir: path.resolve(process.env.NETPULSE_DUCKDB_EXTENSIONS ?? path.join(root, '.tools', 'duckdb-extensions')),
};

/**
 * Settings a stack's data folder carries, as defaults under the environment: `up.sh --s3` writes
 * where the store and the lake are (netpulse.env) and the store's keys (secrets/s3.env, 0600), so
 * `NETPULSE_DATA_DIR=data-s3 netpulse report` finds them. Lines are NAME=value.
 */
function loadDataDirSettings(dir: string): void {
  for (const file of [path.join(dir, 'netpulse.env'), path.join(dir, 'secrets', 's3.env')]) {
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim());
      if (match) process.env[match[1]] ??= match[2];
    }
  }
}
loadDataDirSettings(config.dataDir);

