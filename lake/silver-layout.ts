// Silver's layout in the lake: how many shards it has and each shard's tables. The count belongs
// to the lake (lake.silver_layout, newest row wins): set by the first pipeline that makes silver,
// changed only by resharding, so no setting can silently move devices between shards.
import type { DuckDBConnection } from '@duckdb/node-api';
import { ApplicationFailure } from '@temporalio/common';
import { LAKE, lakeOf, metadataTable } from './catalog';
import { fenceTable, retryConcurrentCommit } from './commit';
import { inTransaction, sqlIdentifier, sqlString } from './duckdb';
import { forgetTables, missingTables, tableColumns } from './tables';
import {
  MAX_SILVER_SHARDS, shardPredicateSql, silverShardOwner, silverShards, silverShardTables, type SilverShard, type SilverShardTables,
} from '../rules/shards';

export const SILVER_LAYOUT = 'lake.silver_layout';
export const SILVER_DQ = 'silver.dq_counts';
/** The names readers use: the tables of a one-shard lake, views over the shards' tables otherwise. */
export const SILVER_VIEWS: SilverShardTables = silverShardTables();

/** A shard's tables (and the shared data-quality counts); bench/silver-limit.ts makes silver's tables in plain DuckDB with it. */
export const tableDdl = (t: SilverShardTables) => `
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

/**
 * The shard count at lake snapshot `snapshot`: what a reader of silver as of that snapshot must
 * union (a reshard after it changed the tables, not the past). One before the layout was recorded.
 */
export async function shardCountAt(db: DuckDBConnection, snapshot: number): Promise<number> {
  try {
    const rows = (await db.runAndReadAll(`SELECT shards FROM ${SILVER_LAYOUT} AT (VERSION => ${Math.trunc(snapshot)}) ORDER BY changed_at DESC LIMIT 1`)).getRows();
    if (rows.length > 0) return Number(rows[0][0]);
  } catch (error) {
    if (!/does not exist/i.test((error as Error).message)) throw error;
  }
  return 1;
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

export interface ReshardReport {
  from: number;
  to: number;
  /** Rows moved into the new shards' tables, by kind. */
  rows: Record<keyof SilverShardTables, number>;
  /** The bronze snapshot every shard had read: where the new shards start. */
  bronzeSnapshot: number;
  snapshot: number;
}

interface ShardFenceDetails {
  input?: { toSnapshot: number };
  maxEventTime?: string;
  hashedFrom?: string;
  totals?: { rowsIn: number; eventsOut: number; quarantined: number; duplicates: number };
}

const notDrained = (message: string) => ApplicationFailure.create({ type: 'SilverNotDrained', nonRetryable: true, message: `${message}; drain first: netpulse silver reshard does` });

/**
 * The typed address of a quarantined row (its raw bronze row as JSON), the shard key silver read
 * it with: the same text silver-input.ts types.
 */
const QUARANTINED_IP = `trim(coalesce(raw::JSON->>'Ip', raw::JSON->'_rescued_data'->>'Ip'))`;

/**
 * Moves silver from `from` shards to `to` in one transaction: each new shard's tables filled from
 * the old ones by the new shard predicate, the old tables (and views) dropped, the views made
 * again, each new owner's fence started where every old shard stood (its bronze mark, its devices'
 * newest event for the watermark; the old running totals on shard 0), and the count recorded.
 * Refused unless silver is drained: every shard has read every bronze commit and gold has read
 * every silver commit (else those changes would be lost to gold's incremental answers).
 */
export async function reshardSilverTables(db: DuckDBConnection, from: number, to: number, fenceOf: (owner: string) => Promise<{ details?: ShardFenceDetails; snapshot: number }>,
  goldMark: number): Promise<ReshardReport> {
  const olds = silverShards(from);
  const fences = await Promise.all(olds.map(async (s) => ({ shard: s, ...(await fenceOf(silverShardOwner(s))) })));
  const [[bronze]] = (await db.runAndReadAll(`SELECT coalesce(max(snapshot_id), 0) FROM ${metadataTable(db, 'ducklake_snapshot_changes')}
    WHERE json_extract_string(commit_extra_info, '$.owner') LIKE 'bronze.%'`)).getRows();
  const bronzeSnapshot = Number(bronze);
  for (const f of fences) {
    const mark = f.details?.input?.toSnapshot ?? 0;
    if (mark !== bronzeSnapshot) throw notDrained(`${silverShardOwner(f.shard)} has read bronze to snapshot ${mark}, and bronze is at ${bronzeSnapshot}`);
  }
  const newestSilver = Math.max(0, ...fences.map((f) => f.snapshot));
  if (goldMark < newestSilver) throw notDrained(`gold has read silver to snapshot ${goldMark}, and silver is at ${newestSilver}`);

  const news = silverShards(to);
  const kinds = Object.keys(SILVER_VIEWS) as (keyof SilverShardTables)[];
  const rows = { events: 0, quarantine: 0, deviceState: 0 };
  const hashed = fences.map((f) => f.details?.hashedFrom).filter((h): h is string => h !== undefined && h !== 'all').sort();
  const totals = fences.reduce((sum, f) => {
    for (const key of Object.keys(sum) as (keyof typeof sum)[]) sum[key] += f.details?.totals?.[key] ?? 0;
    return sum;
  }, { rowsIn: 0, eventsOut: 0, quarantined: 0, duplicates: 0 });
  await inTransaction(db, async () => {
    // The old shards' tables are read directly (the views' names are taken by the tables of one shard).
    if (from > 1) for (const kind of kinds) await db.run(`DROP VIEW ${SILVER_VIEWS[kind]}`);
    for (const shard of news) {
      const tables = silverShardTables(shard);
      await db.run(tableDdl(tables));
      for (const kind of kinds) {
        // Today's columns, by name: a lake made by an older version may have them in another order, or one more.
        const columns = [...(await tableColumns(db, tables[kind])).keys()].map(sqlIdentifier).join(', ');
        const predicate = shardPredicateSql(shard, kind === 'quarantine' ? QUARANTINED_IP : 'ip');
        rows[kind] += (await db.run(`INSERT INTO ${tables[kind]} (${columns})
          SELECT ${columns} FROM (${allShardsSql(from, kind)}) WHERE ${predicate}`)).rowsChanged;
      }
    }
    for (const shard of olds) {
      for (const kind of kinds) await db.run(`DROP TABLE ${silverShardTables(shard)[kind]}`);
      await db.run(`DROP TABLE IF EXISTS ${fenceTable(silverShardOwner(shard))}`);
    }
    for (const shard of news) {
      const [[newest]] = (await db.runAndReadAll(`SELECT max(hora_conexao)::VARCHAR FROM ${silverShardTables(shard).events}`)).getRows();
      const owner = silverShardOwner(shard);
      const details: ShardFenceDetails = {
        input: { toSnapshot: bronzeSnapshot }, maxEventTime: (newest as string | null) ?? undefined,
        hashedFrom: hashed.length > 0 ? hashed.at(-1) : 'all',
        totals: shard.index === 0 ? totals : { rowsIn: 0, eventsOut: 0, quarantined: 0, duplicates: 0 },
      };
      await db.run(`DROP TABLE IF EXISTS ${fenceTable(owner)}`);
      await db.run(`CREATE TABLE ${fenceTable(owner)} (
        owner VARCHAR NOT NULL, batch_seq BIGINT NOT NULL, batch_id VARCHAR, commit_message VARCHAR, committed_at TIMESTAMPTZ, result VARCHAR)`);
      await db.run(`INSERT INTO ${fenceTable(owner)} VALUES (${sqlString(owner)}, -1, NULL, NULL, NULL, ${sqlString(JSON.stringify({ details }))})`);
    }
    await createViews(db, to);
    await recordShardCount(db, to, `resharded from ${from}`);
    await db.run(`CALL ${LAKE}.set_commit_message('netpulse', ${sqlString(`RESHARD silver ${from} to ${to}`)},
      extra_info => ${sqlString(JSON.stringify({ owner: 'reshard', from, to, bronzeSnapshot }))})`);
  });
  const snapshot = Number((await db.runAndReadAll(`SELECT id FROM ${LAKE}.last_committed_snapshot()`)).getRows()[0][0]);
  forgetTables(lakeOf(db));
  for (const shard of news) await sortEventsWhenMerged(db, silverShardTables(shard).events);
  return { from, to, rows, bronzeSnapshot, snapshot };
}
