// Reads of the lake for the CLI, the dashboard and anything else outside the worker: each
// process attaches the lake read-only on its own, so queries and their results never pass
// through Temporal, and readers never wait for writers.
import { StatementType, type DuckDBConnection } from '@duckdb/node-api';
import { GOLD_TABLES } from '../rules/gold';
import { metadataTable, withLake, type LakeConfig } from './catalog';
import { missingTables } from './tables';
import { tableAtSql } from './changes';
import { FENCE_PREFIX } from './commit';
import { isOutOfMemory, sqlIdentifier, sqlString } from './duckdb';
import { refusalOf } from './read-guard';
import { recordedShardCount } from './silver-layout';

/** How many silver shards the lake has (one before silver exists, or when it cannot be read). */
export async function readSilverShardCount(lake: LakeConfig): Promise<number> {
  return withLake(lake, async (db) => (await recordedShardCount(db)) ?? 1, { readOnly: true }).catch(() => 1);
}

export interface QueryResult {
  columns: string[];
  rows: Record<string, unknown>[];
  truncated: boolean;
  elapsedMs: number;
}

export interface GoldReport {
  /** The gold snapshot the answers come from; undefined when gold has never been refreshed. */
  version?: number;
  committedAt?: string;
  asOf?: string;
  tables: Record<string, Record<string, unknown>[]>;
}

/** A read the user asked for that cannot be answered: bad SQL, a write, a query over the time limit. */
export class ReadError extends Error {}

/** A well-formed read with nothing to answer from (an as-of before the first gold refresh): not bad input. */
export class NotFoundError extends Error {}

/** The tables that answer a question (server_load_history is server_load's input). */
export const REPORTED_TABLES = GOLD_TABLES.filter((t) => t !== 'server_load_history');

/**
 * One read-only SELECT in the reader sandbox: the reader role's read-only attachment, only the
 * functions a reader needs (read-guard.ts), no file access outside the lake, configuration locked;
 * at most `maxRows` rows, interrupted after `timeoutMs`.
 */
export async function sandboxedQuery(lake: LakeConfig, sql: string, maxRows: number, timeoutMs: number): Promise<QueryResult> {
  return withLake(lake, async (db) => {
    const started = Date.now();
    let statements;
    try {
      statements = await db.extractStatements(sql);
    } catch (error) {
      throw new ReadError((error as Error).message);
    }
    if (statements.count !== 1) throw new ReadError(`expected one SQL statement, got ${statements.count}`);
    const refusal = refusalOf(await parseTree(db, sql));
    if (refusal) throw new ReadError(refusal);
    const timer = setTimeout(() => db.interrupt(), timeoutMs);
    try {
      const prepared = await statements.prepare(0);
      if (prepared.statementType !== StatementType.SELECT) {
        throw new ReadError(NOT_A_SELECT);
      }
      const reader = await prepared.runAndReadUntil(maxRows + 1);
      const rows = jsonRows(reader);
      return { columns: reader.columnNames(), rows: rows.slice(0, maxRows), truncated: rows.length > maxRows, elapsedMs: Date.now() - started };
    } catch (error) {
      if (error instanceof ReadError || isOutOfMemory(error)) throw error; // out of memory: withLake says what to change
      const interrupted = Date.now() - started >= timeoutMs;
      throw new ReadError(interrupted ? `query interrupted after ${timeoutMs} ms (the time limit)` : (error as Error).message.split('\n')[0]);
    } finally {
      clearTimeout(timer);
    }
  }, { readOnly: true, sandbox: true });
}

/** DuckDB's parse tree of one SELECT; anything else is refused (json_serialize_sql serializes only SELECTs). */
async function parseTree(db: DuckDBConnection, sql: string): Promise<unknown> {
  const serialize = await db.prepare('SELECT json_serialize_sql($1::VARCHAR)');
  serialize.bindVarchar(1, sql);
  const tree = JSON.parse(String((await serialize.runAndReadAll()).getRows()[0][0])) as { error?: boolean };
  if (tree.error) throw new ReadError(NOT_A_SELECT);
  return tree;
}

const NOT_A_SELECT = 'only SELECT statements are allowed: readers attach the lake read-only';

/** Rows as JSON, with counts as numbers (DuckDB's JSON form gives BIGINTs as strings) where they fit exactly. */
export function jsonRows(reader: { getRowObjectsJson(): unknown[]; getRowObjects(): unknown[] }): Record<string, unknown>[] {
  const raw = reader.getRowObjects() as Record<string, unknown>[];
  return (reader.getRowObjectsJson() as Record<string, unknown>[]).map((row, i) => Object.fromEntries(Object.entries(row).map(([k, v]) => {
    const original = raw[i][k];
    return [k, typeof original === 'bigint' && original <= BigInt(Number.MAX_SAFE_INTEGER) && original >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(original) : v];
  })));
}

async function rows(db: DuckDBConnection, sql: string): Promise<Record<string, unknown>[]> {
  return jsonRows(await db.runAndReadAll(sql));
}

/** The latest gold refresh (at or before `asOf`): its snapshot and commit time; undefined before the first. */
export async function latestGoldRefresh(db: DuckDBConnection, asOf: { asOfVersion?: number; asOfTime?: string } = {}): Promise<{ snapshot_id: unknown; committed_at: unknown } | undefined> {
  const condition = asOf.asOfVersion !== undefined ? `snapshot_id <= ${Math.trunc(asOf.asOfVersion)}`
    : asOf.asOfTime !== undefined ? `snapshot_time <= ${sqlString(asOf.asOfTime)}::TIMESTAMPTZ` : 'true';
  const [commit] = await rows(db, `
    SELECT snapshot_id, snapshot_time::VARCHAR AS committed_at
    FROM ${metadataTable(db, 'ducklake_snapshot_changes')} JOIN ${metadataTable(db, 'ducklake_snapshot')} USING (snapshot_id)
    WHERE commit_message LIKE 'REFRESH gold:%' AND ${condition}
    ORDER BY snapshot_id DESC LIMIT 1`);
  return commit as { snapshot_id: unknown; committed_at: unknown } | undefined;
}

/** Whole seconds from a commit time as the catalog gives it (`2026-06-01 10:00:00.5+00`) to now. */
export function secondsSince(committedAt: string): number {
  return Math.round((Date.now() - Date.parse(committedAt.replace(' ', 'T').replace(/\+00$/, 'Z'))) / 1000);
}

/** Every gold table now, or as of an earlier gold refresh (a snapshot id, or a time). */
export async function readGoldReport(lake: LakeConfig, asOf: { asOfVersion?: number; asOfTime?: string } = {}): Promise<GoldReport> {
  return withLake(lake, async (db) => {
    const commit = await latestGoldRefresh(db, asOf);
    if (!commit) {
      if (asOf.asOfVersion !== undefined || asOf.asOfTime !== undefined) {
        throw new NotFoundError(`no gold refresh at or before ${asOf.asOfVersion !== undefined ? `snapshot ${asOf.asOfVersion}` : asOf.asOfTime} (or it is past the snapshot retention)`);
      }
      return { tables: {} };
    }
    const version = Number(commit.snapshot_id);
    const tables: GoldReport['tables'] = {};
    for (const name of REPORTED_TABLES) {
      const source = tableAtSql(`gold.${name}`, version);
      // Per-minute counts grow forever: the report carries the last quarter hour.
      const recent = name === 'events_per_minute' ? `WHERE minute >= (SELECT max(minute) - INTERVAL 14 MINUTE FROM ${source})` : '';
      const order = name === 'heavy_clients' ? 'times_median DESC, velocidade_mbps DESC, servidor, ip' : 'ALL'; // heaviest first
      tables[name] = await rows(db, `SELECT * FROM ${source} ${recent} ORDER BY ${order}`);
    }
    const asOfValue = tables.devices_last_10_min?.[0]?.as_of;
    return { version, committedAt: String(commit.committed_at), asOf: asOfValue === undefined ? undefined : String(asOfValue), tables };
  }, { readOnly: true });
}

/** Rows of fixed, trusted SQL (status screens), on a read-only attachment. */
export async function readRows(lake: LakeConfig, sql: string): Promise<Record<string, unknown>[]> {
  return withLake(lake, (db) => rows(db, sql), { readOnly: true });
}

/** Every checkpoint owner's last committed batch, from the fence tables. */
export async function readOwners(lake: LakeConfig): Promise<Record<string, unknown>[]> {
  return withLake(lake, async (db) => {
    const fences = (await rows(db, `SELECT table_name FROM information_schema.tables
      WHERE table_catalog = current_database() AND table_schema = 'lake' AND table_name LIKE '${FENCE_PREFIX}%' ORDER BY 1`))
      .map((r) => `SELECT owner, batch_seq, batch_id, committed_at::VARCHAR AS committed_at FROM lake.${sqlIdentifier(String(r.table_name))}`);
    return fences.length ? rows(db, `SELECT * FROM (${fences.join(' UNION ALL ')}) WHERE batch_seq >= 0 ORDER BY owner`) : [];
  }, { readOnly: true });
}

/**
 * Quarantine counts per layer: landing files (bronze) and rows (silver). silver.quarantine
 * exists from silver's first batch on; before that silver has no row here.
 */
export async function readQuarantineCounts(lake: LakeConfig): Promise<Record<string, unknown>[]> {
  const layers = [
    { table: 'bronze.quarantine', sql: `SELECT 'bronze' AS layer, count(*) AS quarantined, count(DISTINCT table_name) AS tables FROM bronze.quarantine` },
    { table: 'silver.quarantine', sql: `SELECT 'silver' AS layer, count(*) AS quarantined, count(DISTINCT source_table) AS tables FROM silver.quarantine` },
  ];
  return withLake(lake, async (db) => {
    const missing = await missingTables(db, layers.map((l) => l.table));
    const present = layers.filter((l) => !missing.includes(l.table));
    return present.length ? rows(db, `SELECT * FROM (${present.map((l) => l.sql).join(' UNION ALL ')}) ORDER BY layer`) : [];
  }, { readOnly: true });
}

/** The latest batch commits (snapshots with a commit message), newest first. */
export async function readLatestCommits(lake: LakeConfig, limit = 8): Promise<Record<string, unknown>[]> {
  return withLake(lake, (db) => rows(db, `
    SELECT snapshot_id, snapshot_time::VARCHAR AS committed_at, commit_message
    FROM ${metadataTable(db, 'ducklake_snapshot_changes')} JOIN ${metadataTable(db, 'ducklake_snapshot')} USING (snapshot_id)
    WHERE commit_message IS NOT NULL ORDER BY snapshot_id DESC LIMIT ${Math.trunc(limit)}`), { readOnly: true });
}

export interface DashboardData {
  report: GoldReport;
  /** Connection events per minute over the hour up to the report's last minute. */
  eventsLastHour: Record<string, unknown>[];
  /** Mbps in use over all servers at each gold refresh (the load history). */
  bandwidthOverTime: Record<string, unknown>[];
  quarantine: { bronzeFiles: number; silverByRule: Record<string, unknown>[] };
  owners: Record<string, unknown>[];
}

/** Everything the dashboard shows from the lake, from one gold snapshot (now, or as of). */
export async function readDashboard(lake: LakeConfig, asOf: { asOfVersion?: number; asOfTime?: string } = {}): Promise<DashboardData> {
  const report = await readGoldReport(lake, asOf);
  return withLake(lake, async (db) => {
    const at = (table: string) => (report.version === undefined ? table : tableAtSql(table, report.version));
    const eventsLastHour = report.version === undefined ? [] : await rows(db, `
      SELECT strftime(minute, '%Y-%m-%dT%H:%M:00') AS minute, dispositivo, status, events FROM ${at('gold.events_per_minute')}
      WHERE minute > (SELECT max(minute) - INTERVAL 60 MINUTE FROM ${at('gold.events_per_minute')}) ORDER BY ALL`);
    const bandwidthOverTime = report.version === undefined ? [] : await rows(db, `
      SELECT strftime(as_of, '%Y-%m-%dT%H:%M:%S') AS as_of, sum(mbps_in_use)::BIGINT AS mbps_in_use, sum(devices_connected)::BIGINT AS devices_connected
      FROM ${at('gold.server_load_history')} GROUP BY as_of ORDER BY as_of DESC LIMIT 120`);
    const silverByRule = (await missingTables(db, ['silver.quarantine'])).length === 0
      ? await rows(db, 'SELECT rule, count(*) AS rows FROM silver.quarantine GROUP BY rule ORDER BY rows DESC, rule') : [];
    const bronzeFiles = Number((await rows(db, 'SELECT count(*) AS n FROM bronze.quarantine'))[0].n);
    return { report, eventsLastHour, bandwidthOverTime: bandwidthOverTime.reverse(), quarantine: { bronzeFiles, silverByRule }, owners: [] };
  }, { readOnly: true }).then(async (data) => ({ ...data, owners: await readOwners(lake) }));
}
