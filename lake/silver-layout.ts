// Silver's layout in the lake: how many shards it has and each shard's tables. The count belongs
// to the lake (lake.silver_layout, newest row wins): set by the first pipeline that makes silver,
// changed only by resharding, so no setting can silently move devices between shards.
import type { DuckDBConnection } from '@duckdb/node-api';
import { ApplicationFailure } from '@temporalio/common';
import { LAKE } from './catalog';
import { retryConcurrentCommit } from './commit';
import { inTransaction, sqlString } from './duckdb';
import { missingTables } from './tables';
import { MAX_SILVER_SHARDS, silverShards, silverShardTables, type SilverShard, type SilverShardTables } from '../rules/shards';

export const SILVER_LAYOUT = 'lake.silver_layout';
export const SILVER_DQ = 'silver.dq_counts';
/** The names readers use: the tables of a one-shard lake, views over the shards' tables otherwise. */
export const SILVER_VIEWS: SilverShardTables = silverShardTables();

const tableDdl = (t: SilverShardTables) => `
CREATE TABLE IF NOT EXISTS ${t.events} (
  event_hash UBIGINT, ip VARCHAR NOT NULL, dispositivo VARCHAR NOT NULL, status VARCHAR NOT NULL,
  hora_conexao TIMESTAMP NOT NULL, velocidade_mbps INTEGER NOT NULL, nome VARCHAR NOT NULL, endereco VARCHAR,
  servidor VARCHAR, source_table VARCHAR NOT NULL, source_file VARCHAR, bronze_snapshot BIGINT NOT NULL,
  _batch_id VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS ${t.quarantine} (
  rule VARCHAR NOT NULL, failed_rules VARCHAR[] NOT NULL, raw VARCHAR NOT NULL, source_table VARCHAR NOT NULL,
  source_file VARCHAR, bronze_snapshot BIGINT NOT NULL, _batch_id VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS ${t.deviceState} (
  ip VARCHAR NOT NULL, dispositivo VARCHAR NOT NULL, nome VARCHAR, endereco VARCHAR, servidor VARCHAR,
  velocidade_mbps INTEGER, status VARCHAR, last_event_at TIMESTAMP, last_event_key VARCHAR);
CREATE TABLE IF NOT EXISTS ${SILVER_DQ} (
  _batch_id VARCHAR NOT NULL, check_name VARCHAR NOT NULL, rows BIGINT NOT NULL, checked_at TIMESTAMPTZ NOT NULL);
`;

/**
 * silver events are sorted by event time when maintenance merges or flushes their files, not at
 * insert (DuckLake 1.0's sorted tables, `sort_on_insert` off): gold's 10-minute window
 * (devices_last_10_min, every gold batch) then reads a row group or two of each merged file instead
 * of all of them. 3M events shuffled over 20 h in 12 batches, merged: the window 221 → 59 ms p50;
 * a 250k-row insert 430 vs 433 ms and the merge 2.22 vs 2.24 s, unsorted vs sorted, alternating
 * on a loaded machine. Sorting at insert cost ~18 % more per batch and helped only within a batch.
 */
export async function sortEventsWhenMerged(db: DuckDBConnection, events: string): Promise<void> {
  const [schema, name] = events.split('.');
  await db.run(`ALTER TABLE ${events} SET SORTED BY (hora_conexao ASC)`);
  await db.run(`CALL ${LAKE}.set_option('sort_on_insert', false, schema => ${sqlString(schema)}, table_name => ${sqlString(name)})`);
}

/**
 * A shard's tables (and the shared data-quality counts), made by its first batch; returns the
 * events table when it made it. `sort`: its sort order set now (DuckLake refuses table options on
 * a table made in the same, still open, transaction).
 */
export async function ensureShardTables(db: DuckDBConnection, shard?: SilverShard, { sort = true } = {}): Promise<string | undefined> {
  const tables = silverShardTables(shard);
  if ((await missingTables(db, [tables.events, tables.quarantine, tables.deviceState, SILVER_DQ])).length === 0) return undefined;
  const eventsMissing = (await missingTables(db, [tables.events])).length > 0;
  await db.run(tableDdl(tables));
  if (eventsMissing && sort) await sortEventsWhenMerged(db, tables.events);
  return eventsMissing ? tables.events : undefined;
}

/** `kind`'s tables of every shard as one relation; each `AT (VERSION => at)` when given. */
export function allShardsSql(count: number, kind: keyof SilverShardTables, at?: number): string {
  const version = at === undefined ? '' : ` AT (VERSION => ${Math.trunc(at)})`;
  return silverShards(count).map((s) => `SELECT * FROM ${silverShardTables(s)[kind]}${version}`).join(' UNION ALL ');
}

/** With several shards, silver.events, silver.quarantine and silver.device_state are views over theirs. */
async function createViews(db: DuckDBConnection, count: number): Promise<void> {
  if (count === 1) return;
  for (const kind of Object.keys(SILVER_VIEWS) as (keyof SilverShardTables)[]) {
    await db.run(`CREATE OR REPLACE VIEW ${SILVER_VIEWS[kind]} AS ${allShardsSql(count, kind)}`);
  }
}

/** The lake's shard count; a lake whose silver predates shards has one; undefined before silver exists. */
export async function recordedShardCount(db: DuckDBConnection): Promise<number | undefined> {
  if ((await missingTables(db, [SILVER_LAYOUT])).length === 0) {
    const rows = (await db.runAndReadAll(`SELECT shards FROM ${SILVER_LAYOUT} ORDER BY changed_at DESC LIMIT 1`)).getRows();
    if (rows.length > 0) return Number(rows[0][0]);
  }
  return (await missingTables(db, [SILVER_VIEWS.events])).length === 0 ? 1 : undefined;
}

async function recordShardCount(db: DuckDBConnection, count: number, reason: string): Promise<void> {
  await db.run(`CREATE TABLE IF NOT EXISTS ${SILVER_LAYOUT} (shards INTEGER NOT NULL, changed_at TIMESTAMPTZ NOT NULL, reason VARCHAR NOT NULL)`);
  await db.run(`INSERT INTO ${SILVER_LAYOUT} VALUES (${Math.trunc(count)}, now(), ${sqlString(reason)})`);
}

/** How to change a lake's shard count, for every refusal that names it. */
export const reshardHint = (shards: number) => `reshard it with: netpulse silver reshard --shards ${shards}`
  + ' (drains silver, moves its state into the new shards and resumes; see docs/scaling.md)';

export function shardsDiffer(recorded: number, requested: number): ApplicationFailure {
  return ApplicationFailure.create({
    type: 'SilverShardsDiffer', nonRetryable: true,
    message: `the lake's silver has ${recorded} shard${recorded === 1 ? '' : 's'}, and ${requested} were asked for: run without a shard count `
      + `(the lake's is used), or ${reshardHint(requested)}`,
  });
}

/**
 * The lake's shard count, with every shard's tables (and the views) there: recorded from
 * `requested` (else `fallback`) when silver does not exist yet. A request for another count
 * than the lake's is refused with how to reshard.
 */
export async function prepareShards(db: DuckDBConnection, requested: number | undefined, fallback: number): Promise<number> {
  // Two pipelines may make silver at once: the loser's commit fails, and it reads the winner's count.
  return retryConcurrentCommit(async () => {
    const recorded = await recordedShardCount(db);
    if (recorded !== undefined && requested !== undefined && requested !== recorded) throw shardsDiffer(recorded, requested);
    const count = recorded ?? requested ?? fallback;
    if (!(Number.isInteger(count) && count >= 1 && count <= MAX_SILVER_SHARDS)) {
      throw ApplicationFailure.nonRetryable(`silver shards: ${count} is not a whole number from 1 to ${MAX_SILVER_SHARDS}`, 'InvalidInput');
    }
    const names = silverShards(count).flatMap((s) => Object.values(silverShardTables(s)));
    if ((await missingTables(db, [SILVER_LAYOUT, ...names])).length === 0) return count;
    const made = await inTransaction(db, async () => {
      if ((await missingTables(db, [SILVER_LAYOUT])).length > 0) {
        await recordShardCount(db, count, recorded === undefined ? 'created' : 'recorded for a lake made before shards');
      }
      const events: string[] = [];
      for (const shard of silverShards(count)) events.push(...[await ensureShardTables(db, shard, { sort: false })].filter((t) => t !== undefined));
      await createViews(db, count);
      return events;
    });
    for (const events of made) await sortEventsWhenMerged(db, events);
    return count;
  });
}
