// The one batch/commit protocol every layer uses. A batch's rows, its bookkeeping (ledger,
// quarantine, event log) and its owner's fence row are written in one DuckLake transaction, so
// a batch is wholly there or not at all. The fence makes it exactly once: a retry finds the
// batch in its owner's fence row and returns the earlier result, and two attempts running at
// once (a worker presumed dead that is not) both update that row, so the second COMMIT fails.
// The commit becomes a DuckLake snapshot whose message and extra info name the batch.
import type { DuckDBConnection } from '@duckdb/node-api';
import { ApplicationFailure } from '@temporalio/common';
import { LAKE, metadataTable } from './catalog';
import { inTransaction, sqlString } from './duckdb';
import { failAfterCommit, failpoint, poisonFailpoint } from './failpoints';

/** What a batch wrote to one table. */
export interface TableWrite {
  rowsInserted?: number;
  rowsUpdated?: number;
  rowsDeleted?: number;
}

export interface BatchWrite {
  tables: Record<string, TableWrite>;
  /** For the event log: rows read, written and quarantined. */
  event?: { rowsIn: number; rowsOut: number; quarantined: number };
  details?: Record<string, unknown>;
  /** Small facts for the snapshot's extra info (input ranges), so readers need not open the fence. */
  extraInfo?: Record<string, unknown>;
}

export interface BatchIdentity {
  /** The checkpoint owner: a bronze table, 'silver' or 'gold'. Its batches commit one after another. */
  owner: string;
  batchId: string;
  batchSeq: number;
  operation: string;
  /** Who runs the batch, for the event log and the snapshot's extra info. */
  log: { layer: string; source: string; workflowId?: string; runId?: string };
}

export interface CommitInfo extends BatchWrite {
  batchId: string;
  batchSeq: number;
  /** The DuckLake snapshot the batch committed as: every table it wrote has this version. */
  snapshot: number;
  committedAt: string;
  /** True when the batch was already committed: this call wrote nothing. */
  alreadyCommitted: boolean;
}

export interface EventLogRow {
  kind: 'batch' | 'pass' | 'maintenance' | 'requeue' | 'parked';
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

const sqlNumber = (v: number | undefined) => (v === undefined ? 'NULL' : String(Math.trunc(v)));
const sqlText = (v: string | undefined) => (v === undefined ? 'NULL' : sqlString(v));

/**
 * An event-log row. `once`: written only if no row of that kind, run and batch id is there yet
 * (rows written outside a batch's transaction by an activity that may be retried).
 */
export function eventLogInsert(row: EventLogRow, { once = false } = {}): string {
  const values = `now(), ${sqlText(row.kind)}, ${sqlText(row.layer)}, ${sqlText(row.source)}, ${sqlText(row.batchId)},
    ${sqlNumber(row.rowsIn)}, ${sqlNumber(row.rowsOut)}, ${sqlNumber(row.quarantined)}, ${sqlNumber(row.durationMs)},
    ${sqlText(row.workflowId)}, ${sqlText(row.runId)}, ${row.details === undefined ? 'NULL' : sqlString(JSON.stringify(row.details))}`;
  if (!once) return `INSERT INTO lake.event_log VALUES (${values})`;
  return `INSERT INTO lake.event_log SELECT ${values} WHERE NOT EXISTS (SELECT 1 FROM lake.event_log
    WHERE kind = ${sqlText(row.kind)} AND run_id IS NOT DISTINCT FROM ${sqlText(row.runId)} AND batch_id IS NOT DISTINCT FROM ${sqlText(row.batchId)})`;
}

export interface Fence { batchSeq: number; batchId: string | null; commitMessage: string | null; committedAt: string | null; result: string | null }

/**
 * Each owner's fence is a one-row table of its own: DuckLake detects conflicts per table and data
 * file, so updates of two owners' rows in one shared table would conflict with each other.
 */
export function fenceTable(owner: string): string {
  return `lake.${FENCE_PREFIX}${owner.toLowerCase().replace(/[^a-z0-9]+/g, '_')}`;
}
export const FENCE_PREFIX = 'fence_';

export async function readFence(db: DuckDBConnection, owner: string): Promise<Fence | undefined> {
  let rows;
  try {
    rows = (await db.runAndReadAll(`
      SELECT batch_seq, batch_id, commit_message, committed_at::VARCHAR AS committed_at, result FROM ${fenceTable(owner)}
      ORDER BY batch_seq DESC LIMIT 1`)).getRowObjectsJson() as
      { batch_seq: string; batch_id: string | null; commit_message: string | null; committed_at: string | null; result: string | null }[];
  } catch (error) {
    if (/does not exist/.test((error as Error).message)) return undefined;
    throw error;
  }
  const [row] = rows;
  return row && { batchSeq: Number(row.batch_seq), batchId: row.batch_id, commitMessage: row.commit_message, committedAt: row.committed_at, result: row.result };
}

/** The owner's fence row exists before its first batch, so that batch's transaction updates it. */
async function ensureFence(db: DuckDBConnection, owner: string): Promise<Fence> {
  const fence = await readFence(db, owner);
  if (fence) return fence;
  await db.run(`CREATE TABLE IF NOT EXISTS ${fenceTable(owner)} (
    owner VARCHAR NOT NULL, batch_seq BIGINT NOT NULL, batch_id VARCHAR, commit_message VARCHAR, committed_at TIMESTAMPTZ, result VARCHAR)`);
  await db.run(`INSERT INTO ${fenceTable(owner)} SELECT ${sqlString(owner)}, -1, NULL, NULL, NULL, NULL WHERE NOT EXISTS (FROM ${fenceTable(owner)})`);
  return (await readFence(db, owner))!;
}

/** The details of an owner's last committed batch (its marks and totals), if it has one. */
export function fenceDetails<T>(fence: Fence | undefined): T | undefined {
  return fence?.result ? (JSON.parse(fence.result) as { details?: T }).details : undefined;
}

/** The snapshot of an owner's last committed batch (0 before its first), found by its commit message. */
export async function snapshotOfFence(db: DuckDBConnection, fence: Fence | undefined): Promise<number> {
  if (!fence?.commitMessage) return 0;
  const rows = (await db.runAndReadAll(`
    SELECT max(snapshot_id) FROM ${metadataTable(db, 'ducklake_snapshot_changes')} WHERE commit_message = ${sqlString(fence.commitMessage)}`)).getRows();
  return Number(rows[0]?.[0] ?? 0);
}

const commitMessage = (batch: BatchIdentity) => `${batch.operation} ${batch.batchId}`;

async function earlierCommit(db: DuckDBConnection, batch: BatchIdentity, fence: Fence): Promise<CommitInfo | undefined> {
  if (fence.batchSeq < batch.batchSeq - 1) {
    // The owner's checkpoint is ahead of the lake: the lake was restored from an older copy, or
    // emptied while the owner workflow kept running. Writing on would leave a gap silently.
    throw ApplicationFailure.create({
      type: 'CheckpointAheadOfLake', nonRetryable: true,
      message: `${batch.owner} is at batch ${batch.batchSeq}, but the lake's last commit of it is batch ${fence.batchSeq}: the lake is older than the checkpoint. `
        + 'Terminate the owner workflow (it rebuilds its checkpoint from the lake), or rebuild everything with: netpulse reset --keep-landing',
    });
  }
  if (fence.batchSeq < batch.batchSeq) return undefined;
  if (fence.batchSeq > batch.batchSeq || fence.batchId !== batch.batchId || !fence.result) {
    // Batches of an owner run one after another: a later one committed means this one is stale.
    throw ApplicationFailure.create({
      type: 'BatchBehindLake', nonRetryable: true,
      message: `batch ${batch.batchId} (seq ${batch.batchSeq}) of ${batch.owner} is behind the lake, whose last commit is ${fence.batchId} (seq ${fence.batchSeq}): `
        + 'the owner workflow carries an older checkpoint than the lake (terminate it: it rebuilds its checkpoint from the lake when it starts again)',
    });
  }
  const written = JSON.parse(fence.result) as BatchWrite;
  return {
    ...written, batchId: batch.batchId, batchSeq: batch.batchSeq, alreadyCommitted: true,
    snapshot: await snapshotOfFence(db, fence), committedAt: fence.committedAt ?? '',
  };
}

/** The batch's commit if an earlier attempt made it (undefined if not yet); throws if the checkpoint and lake disagree. */
export async function findCommitted(db: DuckDBConnection, batch: BatchIdentity): Promise<CommitInfo | undefined> {
  const fence = await readFence(db, batch.owner);
  return fence && earlierCommit(db, batch, fence);
}

/** DuckLake could not commit because of a concurrent transaction; trying again may succeed. */
const CONCURRENT_COMMIT = /Failed to commit DuckLake transaction/;
const COMMIT_ATTEMPTS = 4;

/**
 * Runs `work` (one or more DuckLake transactions) again when it loses to a concurrent transaction
 * that wrote the same thing: two attempts of one batch (the fence row; run again, the loser finds
 * the batch committed and returns its result) or of one table's CREATE. DuckLake writes commits
 * that do not conflict again itself; these do, and the next try sees the winner's.
 */
export async function retryConcurrentCommit<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (attempt >= COMMIT_ATTEMPTS || !CONCURRENT_COMMIT.test((error as Error).message)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt + Math.random() * 100));
    }
  }
}

/**
 * Runs `write` and commits it with the owner's fence, in one transaction. If the batch is
 * already committed, nothing runs and the earlier result comes back. `write` gets the owner's
 * previous fence row (its last batch's details: marks, totals), read just before the transaction;
 * a concurrent commit of the same owner still fails this one at COMMIT.
 */
export async function commitBatch(db: DuckDBConnection, batch: BatchIdentity, write: (previous: Fence) => Promise<BatchWrite>): Promise<CommitInfo> {
  return retryConcurrentCommit(async () => {
    const fence = await ensureFence(db, batch.owner);
    const earlier = await earlierCommit(db, batch, fence);
    return earlier ?? (await commitOnce(db, batch, () => write(fence)));
  });
}

async function commitOnce(db: DuckDBConnection, batch: BatchIdentity, write: () => Promise<BatchWrite>): Promise<CommitInfo> {
  const started = Date.now();
  poisonFailpoint(batch.batchId);
  const committed = await inTransaction(db, async () => {
    const written = await write();
    // Planners downstream read rows per commit from here, without scanning the tables.
    const rows = Object.values(written.tables).reduce((n, t) => n + (t.rowsInserted ?? 0) + (t.rowsUpdated ?? 0) + (t.rowsDeleted ?? 0), 0);
    const extraInfo = {
      batchId: batch.batchId, batchSeq: batch.batchSeq, owner: batch.owner, rows, workflowId: batch.log.workflowId, runId: batch.log.runId,
      ...written.extraInfo,
    };
    await db.run(`
      UPDATE ${fenceTable(batch.owner)} SET batch_seq = ${batch.batchSeq}, batch_id = ${sqlString(batch.batchId)},
        commit_message = ${sqlString(commitMessage(batch))}, committed_at = now(),
        result = ${sqlString(JSON.stringify(written))}`);
    await db.run(eventLogInsert({
      kind: 'batch', layer: batch.log.layer, source: batch.log.source, batchId: batch.batchId,
      rowsIn: written.event?.rowsIn, rowsOut: written.event?.rowsOut, quarantined: written.event?.quarantined,
      durationMs: Date.now() - started, workflowId: batch.log.workflowId, runId: batch.log.runId,
    }));
    await db.run(`CALL ${LAKE}.set_commit_message('netpulse', ${sqlString(commitMessage(batch))},
      extra_info => ${sqlString(JSON.stringify(extraInfo))})`);
    await failpoint('before-commit', batch.batchId);
    return written;
  });
  await failpoint('after-commit', batch.batchId);
  failAfterCommit(batch.batchId);
  const [{ id }] = (await db.runAndReadAll(`SELECT id FROM ${LAKE}.last_committed_snapshot()`)).getRowObjectsJson() as { id: string }[];
  const [row] = (await db.runAndReadAll(`
    SELECT snapshot_id, snapshot_time::VARCHAR AS committed_at FROM ${metadataTable(db, 'ducklake_snapshot')} WHERE snapshot_id = ${Number(id)}`)).getRowObjectsJson() as
    { snapshot_id: string; committed_at: string }[];
  return {
    ...committed, batchId: batch.batchId, batchSeq: batch.batchSeq, alreadyCommitted: false,
    snapshot: Number(row.snapshot_id), committedAt: row.committed_at,
  };
}
