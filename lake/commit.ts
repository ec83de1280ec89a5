// The one batch/commit protocol every layer uses: a batch's output rows and its commit-log row
// are written in one DuckDB transaction, so a batch is either wholly there or not at all, and
// a retried batch id returns the earlier commit instead of writing twice.
import type { DuckDBConnection } from '@duckdb/node-api';
import { sqlString } from './duckdb';

export interface CommitInfo {
  table: string;
  version: number;
  batchId: string;
  batchSeq: number;
  operation: string;
  rowsInserted: number;
  rowsUpdated: number;
  rowsDeleted: number;
  committedAt: string;
  details: Record<string, unknown>;
  /** True when the batch id was already committed: this call wrote nothing. */
  alreadyCommitted: boolean;
}

export interface BatchWrite {
  /** For the event log (first table of a batch only): rows read, written and quarantined. */
  event?: { rowsIn: number; rowsOut: number; quarantined: number };
  rowsInserted?: number;
  rowsUpdated?: number;
  rowsDeleted?: number;
  details?: Record<string, unknown>;
}

export interface BatchIdentity {
  batchId: string;
  batchSeq: number;
  operation: string;
  /** Writes a lake.event_log row in the batch's transaction. */
  log?: { layer: string; source: string; workflowId?: string; runId?: string };
}

export interface EventLogRow {
  kind: 'batch' | 'pass';
  layer: string;
  source: string;
  batchId?: string;
  rowsIn?: number;
  rowsOut?: number;
  quarantined?: number;
  durationMs: number;
  workflowId?: string;
  runId?: string;
  details?: unknown;
}

export async function writeEventLog(db: DuckDBConnection, row: EventLogRow): Promise<void> {
  const n = (v: number | undefined) => (v === undefined ? 'NULL' : String(Math.trunc(v)));
  const t = (v: string | undefined) => (v === undefined ? 'NULL' : sqlString(v));
  await db.run(`INSERT INTO lake.event_log VALUES (now()::TIMESTAMP, ${t(row.kind)}, ${t(row.layer)}, ${t(row.source)}, ${t(row.batchId)},
    ${n(row.rowsIn)}, ${n(row.rowsOut)}, ${n(row.quarantined)}, ${n(row.durationMs)}, ${t(row.workflowId)}, ${t(row.runId)},
    ${row.details === undefined ? 'NULL' : sqlString(JSON.stringify(row.details))})`);
}

async function one<T>(db: DuckDBConnection, sql: string): Promise<T | undefined> {
  return (await db.runAndReadAll(sql)).getRowObjectsJson()[0] as T | undefined;
}

type CommitRow = {
  version: string; batch_seq: string; operation: string; rows_inserted: string; rows_updated: string;
  rows_deleted: string; committed_at: string; details: string | null;
};

function toCommitInfo(table: string, batchId: string, row: CommitRow, alreadyCommitted: boolean): CommitInfo {
  return {
    table, batchId, alreadyCommitted,
    version: Number(row.version), batchSeq: Number(row.batch_seq), operation: row.operation,
    rowsInserted: Number(row.rows_inserted), rowsUpdated: Number(row.rows_updated), rowsDeleted: Number(row.rows_deleted),
    committedAt: row.committed_at, details: row.details ? JSON.parse(row.details) : {},
  };
}

export async function findCommit(db: DuckDBConnection, table: string, batchId: string): Promise<CommitInfo | undefined> {
  const row = await one<CommitRow>(db, `SELECT * FROM lake.commit_log WHERE table_name = ${sqlString(table)} AND batch_id = ${sqlString(batchId)}`);
  return row && toCommitInfo(table, batchId, row, true);
}

/** The latest committed version of a table (0 when it has none). */
export async function latestVersion(db: DuckDBConnection, table: string): Promise<number> {
  const row = await one<{ v: string }>(db, `SELECT coalesce(max(version), 0) AS v FROM lake.commit_log WHERE table_name = ${sqlString(table)}`);
  return Number(row?.v ?? 0);
}

async function commitsOfBatch(db: DuckDBConnection, tables: string[], batchId: string): Promise<Record<string, CommitInfo> | undefined> {
  const found: Record<string, CommitInfo> = {};
  for (const table of tables) {
    const commit = await findCommit(db, table, batchId);
    if (!commit) return undefined;
    found[table] = commit;
  }
  return found;
}

/**
 * Runs `write(versions)` and records one commit per table in one transaction. `write` gets the
 * version each table's rows must carry and returns what it wrote per table. If the batch id is
 * already in the commit log, nothing runs and the earlier commits come back.
 */
export async function commitTables(
  db: DuckDBConnection,
  tables: string[],
  batch: BatchIdentity,
  write: (versions: Record<string, number>) => Promise<Record<string, BatchWrite>>,
): Promise<Record<string, CommitInfo>> {
  const earlier = await commitsOfBatch(db, tables, batch.batchId);
  if (earlier) return earlier;
  const started = Date.now();
  await db.run('BEGIN TRANSACTION');
  try {
    const again = await commitsOfBatch(db, tables, batch.batchId);
    if (again) {
      await db.run('ROLLBACK');
      return again;
    }
    const versions: Record<string, number> = {};
    for (const table of tables) versions[table] = (await latestVersion(db, table)) + 1;
    const written = await write(versions);
    const commits: Record<string, CommitInfo> = {};
    for (const table of tables) {
      const { event: _event, ...result } = written[table] ?? {};
      const row = await one<CommitRow>(db, `
        INSERT INTO lake.commit_log VALUES (
          ${sqlString(table)}, ${versions[table]}, ${sqlString(batch.batchId)}, ${batch.batchSeq}, ${sqlString(batch.operation)},
          ${result.rowsInserted ?? 0}, ${result.rowsUpdated ?? 0}, ${result.rowsDeleted ?? 0},
          now()::TIMESTAMP, ${sqlString(JSON.stringify(result.details ?? {}))})
        RETURNING *`);
      commits[table] = toCommitInfo(table, batch.batchId, row!, false);
    }
    const event = written[tables[0]]?.event;
    if (batch.log) {
      await writeEventLog(db, {
        kind: 'batch', layer: batch.log.layer, source: batch.log.source, batchId: batch.batchId,
        rowsIn: event?.rowsIn, rowsOut: event?.rowsOut, quarantined: event?.quarantined, durationMs: Date.now() - started,
        workflowId: batch.log.workflowId, runId: batch.log.runId,
      });
    }
    await db.run('COMMIT');
    return commits;
  } catch (error) {
    await db.run('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** commitTables for a batch that writes one table. */
export async function commitBatch(
  db: DuckDBConnection,
  batch: BatchIdentity & { table: string },
  write: (version: number) => Promise<BatchWrite>,
): Promise<CommitInfo> {
  const commits = await commitTables(db, [batch.table], batch, async (versions) => ({ [batch.table]: await write(versions[batch.table]) }));
  return commits[batch.table];
}

export async function registerTable(db: DuckDBConnection, table: string, kind: 'append' | 'mutable'): Promise<void> {
  await db.run(`INSERT INTO lake.tables VALUES (${sqlString(table)}, ${sqlString(kind)}, now()::TIMESTAMP) ON CONFLICT DO NOTHING`);
}
