// Silver I/O: bronze change feeds → typed, validated, deduplicated events; quarantine with
// the rule broken; device state upserted by key; data-quality counts. One transaction per batch.
import type { DuckDBConnection } from '@duckdb/node-api';
import { LAKE, metadataTable, withLake, type LakeConfig } from '../lake/catalog';
import { addColumn, tableColumns } from '../lake/tables';
import { readableMark, upsertRows } from '../lake/changes';
import { commitBatch, fenceDetails, readFence, snapshotOfFence } from '../lake/commit';
import { ApplicationFailure } from '@temporalio/common';
import { qualified, sqlString } from '../lake/duckdb';
import {
  SILVER_RULES, silverOptionsSchema, type RequeueFilter, type SilverCheckpoint, type SilverInput, type SilverOptions, type SilverResult, type SilverTotals,
} from '../rules/silver';
import { DEFAULT_SILVER_SHARDS, shardCountSchema, SINGLE_SHARD, silverShardOwner, silverShardTables, type SilverShard } from '../rules/shards';
import { checkedInputSql, requeueWhereSql } from './silver-input';
import {
  ensureShardTables, prepareShards, recordedShardCount, reshardHint, reshardSilverTables, SILVER_DQ, sortEventsWhenMerged, type ReshardReport,
} from '../lake/silver-layout';
import { config } from '../config';
import type { LakeDeps } from './context';
import { batchLog, heartbeatEvery } from './context';

/** The owner of a one-shard lake's silver (shards: silverShardOwner). */
export const SILVER_OWNER = silverShardOwner(SINGLE_SHARD);

/**
 * The rows of `checked` (rows of checkedRowsSql, with a rowid) that broke no rule: each with its
 * row (checked_row) and the 64-bit hash of its natural key (ip, dispositivo, hora_conexao, status).
 */
export const passingEventsSql = (checked: string) => `
  SELECT rowid AS checked_row, hash(ip, dispositivo, hora_conexao, status) AS event_hash,
    ip, dispositivo, status, hora_conexao, velocidade_mbps, nome, endereco, servidor,
    source_table, source_file, bronze_snapshot, file_row, bronze_rowid
  FROM ${checked} WHERE len(failed_rules) = 0`;

/**
 * The rows of `passing` (passingEventsSql) that are a later delivery of an event among them: first
 * delivery wins. Only rows sharing a hash can be the same event, so the window that picks the first
 * runs over those few rows: the earliest bronze commit, file and row in the file (bronze's
 * _row_index; the bronze row id for rows ingested before it existed), a total order: the same
 * landing keeps the same rows.
 */
export const redeliveriesSql = (passing: string) => `
  SELECT checked_row FROM ${passing}
  WHERE event_hash IN (SELECT event_hash FROM ${passing} GROUP BY event_hash HAVING count(*) > 1)
  QUALIFY row_number() OVER (PARTITION BY ip, dispositivo, hora_conexao, status ORDER BY bronze_snapshot, source_file, file_row, bronze_rowid) > 1`;

/** The events silver writes: the rows of `passing` not in `dropped` (checked_row), as silver.events rows of batch `batchId`. */
export const newEventsSql = (passing: string, dropped: string, batchId: string, textEventKey = false) => `
  SELECT event_hash,${textEventKey ? ' event_hash::VARCHAR AS event_key,' : ''} * EXCLUDE (checked_row, event_hash, file_row, bronze_rowid), ${sqlString(batchId)} AS _batch_id
  FROM ${passing} ANTI JOIN ${dropped} USING (checked_row)`;

/** The latest event per device (ip, dispositivo) among `events`, as a silver.device_state row. */
export const latestPerDeviceSql = (events: string) => `
  SELECT ip, dispositivo, nome, endereco, servidor, velocidade_mbps, status,
         hora_conexao AS last_event_at, event_hash::VARCHAR AS last_event_key
  FROM ${events}
  QUALIFY row_number() OVER (PARTITION BY ip, dispositivo ORDER BY hora_conexao DESC, last_event_key DESC) = 1`;

/**
 * Marks, in dropped_events, the passing rows that are events silver already has inside the
 * watermark (only events inside it can match; older ones are quarantined as late_event), so
 * deduplication only ever looks that far back. Each event carries a 64-bit hash of its natural
 * key (`event_hash`): the anti-join reads only that column (and event time) of silver.events,
 * and the four natural-key columns are compared only for the few hashes found, so a hash
 * collision never drops an event. Events written before the column existed (`hashedFrom`: the
 * newest event time then) are compared column by column until the watermark has passed them.
 */
async function dropSeenEvents(db: DuckDBConnection, events: string, hashedFrom: string): Promise<void> {
  const inWatermark = `e.hora_conexao >= getvariable('silver_watermark')`;
  const sameEvent = 'e.hora_conexao = n.hora_conexao AND e.ip = n.ip AND e.dispositivo = n.dispositivo AND e.status = n.status';
  const [[hashed]] = (await db.runAndReadAll(`SELECT ${hashedFrom === 'all' ? 'true'
    : `getvariable('silver_watermark') > ${sqlString(hashedFrom)}::TIMESTAMP`}`)).getRows();
  const drop = (candidates: string) => db.run(`INSERT INTO dropped_events SELECT n.checked_row FROM passing_events n
    WHERE ${candidates} EXISTS (SELECT 1 FROM ${events} e WHERE ${hashed ? 'e.event_hash IN (SELECT event_hash FROM seen_hashes) AND ' : ''}${inWatermark} AND ${sameEvent})`);
  if (!hashed) {
    await drop('');
    return;
  }
  await db.run(`CREATE OR REPLACE TEMP TABLE seen_hashes AS
    SELECT DISTINCT e.event_hash FROM ${events} e SEMI JOIN passing_events n ON e.event_hash = n.event_hash WHERE ${inWatermark}`);
  const [[found]] = (await db.runAndReadAll('SELECT count(*) FROM seen_hashes')).getRows();
  if (Number(found) > 0) await drop('n.event_hash IN (SELECT event_hash FROM seen_hashes) AND');
  await db.run('DROP TABLE seen_hashes');
}

/**
 * Takes the quarantine rows the filters select out of silver.quarantine into the temp table
 * `requeued`, in the batch's transaction: they are read again with the batch, so each is an event,
 * a duplicate or quarantined again, once. Returns how many.
 */
async function takeRequeued(db: DuckDBConnection, quarantine: string, filters: RequeueFilter[]): Promise<number> {
  if (filters.length === 0) return 0;
  await db.run(`CREATE OR REPLACE TEMP TABLE requeued AS SELECT rowid AS quarantine_row, * FROM ${quarantine} WHERE ${requeueWhereSql(filters)}`);
  const [[taken]] = (await db.runAndReadAll('SELECT count(*) FROM requeued')).getRows();
  if (Number(taken) > 0) await db.run(`DELETE FROM ${quarantine} WHERE rowid IN (SELECT quarantine_row FROM requeued)`);
  return Number(taken);
}

/**
 * Quarantines the checked rows that broke a rule, with the first rule, all of them and the raw
 * row as JSON: fetched back from bronze (only for these few rows), or as kept for a requeued row.
 */
async function quarantineFailing(db: DuckDBConnection, quarantine: string, tables: string[], batchId: string): Promise<number> {
  const failing = new Set((await db.runAndReadAll(`SELECT DISTINCT source_table FROM silver_checked WHERE len(failed_rules) > 0`)).getRows().map((r) => String(r[0])));
  if (failing.size === 0) return 0;
  const row = (raw: string) => `c.failed_rules[1], c.failed_rules, ${raw}, c.source_table, c.source_file, c.bronze_snapshot, ${sqlString(batchId)}`;
  let quarantined = (await db.run(`INSERT INTO ${quarantine} SELECT ${row('c.requeued_raw')} FROM silver_checked c
    WHERE c.requeued_raw IS NOT NULL AND len(c.failed_rules) > 0`)).rowsChanged;
  for (const table of tables.filter((t) => failing.has(t))) {
    quarantined += (await db.run(`
      INSERT INTO ${quarantine} SELECT ${row('to_json(b)::VARCHAR')}
      FROM silver_checked c JOIN ${qualified(table)} b ON b.rowid = c.bronze_rowid
      WHERE c.source_table = ${sqlString(table)} AND c.requeued_raw IS NULL AND len(c.failed_rules) > 0`)).rowsChanged;
  }
  return quarantined;
}

/** Silver tables made by an older version get the columns added since (once per process). */
const upgradedLakes = new Set<string>();
async function upgradeSilver(db: DuckDBConnection, lake: LakeConfig, events: string): Promise<void> {
  const key = JSON.stringify([lake, events]);
  if (upgradedLakes.has(key)) return;
  if (!(await tableColumns(db, events)).has('event_hash')) await addColumn(db, events, 'event_hash', 'UBIGINT');
  const [[sorted]] = (await db.runAndReadAll(`SELECT count(*) FROM ducklake_options(${sqlString(LAKE)})
    WHERE option_name = 'sort_on_insert' AND scope_entry = ${sqlString(events)}`)).getRows();
  if (Number(sorted) === 0) await sortEventsWhenMerged(db, events);
  upgradedLakes.add(key);
}

/** The newest event silver holds (from the fence when it is there): where hashed event keys start. */
async function newestEventTime(db: DuckDBConnection, events: string, fromFence: string | undefined): Promise<string> {
  if (fromFence) return fromFence;
  const [[newest]] = (await db.runAndReadAll(`SELECT max(hora_conexao)::VARCHAR FROM ${events}`)).getRows();
  return (newest as string | null) ?? 'all';
}

/** Bronze commits after `bronzeSnapshot`, oldest first, with their rows (from the snapshots' extra info). */
const pendingBronzeSql = (db: DuckDBConnection, bronzeSnapshot: number) => `
  SELECT snapshot_id, json_extract_string(commit_extra_info, '$.owner') AS owner,
         coalesce(json_extract(commit_extra_info, '$.rows')::BIGINT, 0) AS rows
  FROM ${metadataTable(db, 'ducklake_snapshot_changes')}
  WHERE snapshot_id > ${Math.trunc(bronzeSnapshot)} AND json_extract_string(commit_extra_info, '$.owner') LIKE 'bronze.%'
  ORDER BY snapshot_id`;

/**
 * Silver batches at a time in a worker process (NETPULSE_SILVER_BATCHES_PER_WORKER, default 1): two
 * shards' batches that land on one worker share its DuckDB memory (256 MB) and ran out of it
 * (bench/results/2026-12-07-scale-out.md, 12 batches retried); a batch past the limit waits,
 * heartbeating, for a slot. Give a worker more only with more memory (NETPULSE_DUCKDB_MEMORY).
 */
let silverBatchesRunning = 0;
const silverBatchesWaiting: (() => void)[] = [];
async function silverBatchSlot(): Promise<() => void> {
  if (silverBatchesRunning < config.silverBatchesPerWorker) silverBatchesRunning++;
  else await new Promise<void>((resolve) => silverBatchesWaiting.push(resolve)); // handed a slot by release
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const next = silverBatchesWaiting.shift();
    if (next) next();
    else silverBatchesRunning--;
  };
}

/** A shard owner whose layout is not the lake's (resharded since it started) writes nothing. */
async function refuseOtherLayout(db: DuckDBConnection, shard: SilverShard): Promise<void> {
  const recorded = await recordedShardCount(db);
  if (recorded === undefined || recorded === shard.count) return;
  throw ApplicationFailure.create({
    type: 'SilverShardsChanged', nonRetryable: true,
    message: `${silverShardOwner(shard)} is shard ${shard.index} of ${shard.count}, but the lake's silver has ${recorded} shards now: `
      + 'terminate this owner workflow (the pipeline starts the lake\'s shards), or ' + reshardHint(shard.count),
  });
}

export function silverActivities(deps: LakeDeps) {
  /**
   * The next silver batch: bronze commits after silver's mark, as many as fit in `maxRows` rows
   * (at least one), so a big backlog goes in bounded transactions. Undefined when none wait.
   */
  async function planSilverBatch(request: { bronzeSnapshot: number; maxRows: number }): Promise<SilverInput | undefined> {
    return withLake(deps.lake, async (db) => {
      const mark = await readableMark(db, request.bronzeSnapshot, 'silver');
      const pending = (await db.runAndReadAll(pendingBronzeSql(db, mark))).getRows()
        .map((r) => ({ snapshot: Number(r[0]), owner: String(r[1]), rows: Number(r[2]) }));
      if (pending.length === 0) return undefined;
      let rows = 0;
      const taken = pending.filter((commit, i) => {
        rows += commit.rows;
        return i === 0 || rows <= request.maxRows;
      });
      // filter keeps a prefix only while the running total fits: cut at the first that did not
      const cut = taken.findIndex((commit, i) => commit !== pending[i]);
      const batch = cut === -1 ? taken : taken.slice(0, cut);
      return {
        fromSnapshot: mark, toSnapshot: batch[batch.length - 1].snapshot,
        tables: [...new Set(batch.map((c) => c.owner))].sort(), rows: batch.reduce((n, c) => n + c.rows, 0),
        drained: batch.length === pending.length,
      };
    });
  }

  /**
   * Shard `shard`'s batch: its devices' rows of the bronze range, written to its own tables under
   * its own fence. An owner of another layout than the lake's (resharded since it started) is refused.
   */
  async function runSilverBatch(given: { batchId: string; batchSeq: number; input: SilverInput; options: SilverOptions; shard?: SilverShard }): Promise<SilverResult> {
    // Options from an owner started by an older version lack newer settings: their defaults apply.
    const request = { ...given, options: silverOptionsSchema.parse(given.options) };
    const shard = given.shard ?? SINGLE_SHARD;
    const tables = silverShardTables(shard);
    let phase = 'waiting for this worker\'s other silver batch';
    const stopHeartbeat = heartbeatEvery(5000, () => ({ phase, tables: request.input.tables.length }));
    const release = await silverBatchSlot();
    phase = 'writing';
    return withLake(deps.lake, async (db) => {
      await refuseOtherLayout(db, shard);
      await ensureShardTables(db, shard);
      await upgradeSilver(db, deps.lake, tables.events);
      const identity = {
        owner: silverShardOwner(shard), batchId: request.batchId, batchSeq: request.batchSeq, operation: 'MERGE', log: batchLog('silver', tables.events),
      };
      const commit = await commitBatch(db, identity, async (fence) => {
        const counts = { rowsIn: 0, quarantined: 0, events: 0, duplicates: 0 };
        const previous = fenceDetails<{ totals?: SilverTotals; maxEventTime?: string; hashedFrom?: string }>(fence);
        // The watermark follows the newest event accepted before this batch (future events are quarantined, so cannot push it).
        await db.run(`SET VARIABLE silver_watermark = ${previous?.maxEventTime
          ? `${sqlString(previous.maxEventTime)}::TIMESTAMP - INTERVAL ${Math.trunc(request.options.watermarkMinutes)} MINUTE`
          : `'-infinity'::TIMESTAMP`}`);
        const requeued = await takeRequeued(db, tables.quarantine, request.input.requeue ?? []);
        await db.run(`CREATE OR REPLACE TEMP TABLE silver_checked AS ${await checkedInputSql(db, request.input, request.options, (request.input.requeue ?? []).length > 0, shard)}`);
        // Requeued rows were counted in rowsIn when they first came; they count again as what they are now.
        const [[read]] = (await db.runAndReadAll('SELECT count(*) FROM silver_checked')).getRows();
        counts.rowsIn = Number(read) - requeued;
        counts.quarantined = await quarantineFailing(db, tables.quarantine, request.input.tables, request.batchId);
        // Events of lakes made by older versions also carry the hash as text (a NOT NULL column), which
        // new lakes leave out: it was a third of the bytes written per event.
        const textEventKey = (await tableColumns(db, tables.events)).has('event_key');
        // Redelivered events (same device, time and status) are kept once, across batches: first
        // delivery wins (redeliveriesSql inside the batch, dropSeenEvents against silver). New events
        // are the passing rows minus those marked dropped: a view, since copying the batch cost
        // ~170 ms of a ~1.8 s batch.
        await db.run(`
          CREATE OR REPLACE TEMP TABLE dropped_events (checked_row BIGINT);
          CREATE OR REPLACE TEMP VIEW passing_events AS ${passingEventsSql('silver_checked')};
          CREATE OR REPLACE TEMP VIEW new_events AS ${newEventsSql('passing_events', 'dropped_events', request.batchId, textEventKey)}`);
        await db.run(`INSERT INTO dropped_events ${redeliveriesSql('passing_events')}`);
        const hashedFrom = previous ? previous.hashedFrom ?? (await newestEventTime(db, tables.events, previous.maxEventTime)) : 'all';
        await dropSeenEvents(db, tables.events, hashedFrom);
        counts.events = (await db.run(`INSERT INTO ${tables.events} BY NAME SELECT * FROM new_events`)).rowsChanged;
        const [[newest]] = (await db.runAndReadAll(`SELECT greatest(max(hora_conexao), ${
          previous?.maxEventTime ? `${sqlString(previous.maxEventTime)}::TIMESTAMP` : 'NULL'})::VARCHAR FROM new_events`)).getRows();
        const maxEventTime = (newest as string | null) ?? undefined;
        counts.duplicates = counts.rowsIn + requeued - counts.quarantined - counts.events;
        // Latest event per device among the new ones; older than the stored state: no change.
        // Each keeps the rowid of the state row it replaces, so the update needs no second join.
        await db.run(`
          CREATE OR REPLACE TEMP TABLE device_updates AS
          SELECT n.*, s.rowid AS state_row FROM (${latestPerDeviceSql('new_events')}) AS n
          LEFT JOIN ${tables.deviceState} s USING (ip, dispositivo)
          WHERE s.ip IS NULL OR (n.last_event_at, n.last_event_key) > (s.last_event_at, s.last_event_key)`);
        const devices = await upsertRows(db, tables.deviceState, 'device_updates', 'state_row');
        const checks = [
          ['rows_in', counts.rowsIn], ['passed', counts.rowsIn + requeued - counts.quarantined], ['quarantined', counts.quarantined],
          ['duplicates', counts.duplicates], ['events_out', counts.events], ...(requeued > 0 ? [['requeued', requeued]] : []),
        ] as [string, number][];
        const dqRows = (await db.run(`
          INSERT INTO ${SILVER_DQ}
          SELECT ${sqlString(request.batchId)}, check_name, rows, now() FROM (
            VALUES ${checks.map(([n, c]) => `(${sqlString(n)}, ${c})`).join(', ')}
            UNION ALL
            SELECT 'rule:' || r.rule, count(c.rule) FROM (VALUES ${SILVER_RULES.map((r) => `(${sqlString(r.name)})`).join(', ')}) r(rule)
            LEFT JOIN (SELECT unnest(failed_rules) AS rule FROM silver_checked) c USING (rule) GROUP BY r.rule
          ) AS d(check_name, rows)`)).rowsChanged;
        await db.run('DROP VIEW new_events; DROP VIEW passing_events; DROP TABLE dropped_events; DROP TABLE silver_checked; DROP TABLE device_updates; DROP TABLE IF EXISTS requeued');
        // The fence row carries silver's checkpoint: its input range, running totals and the watermark's base.
        const totals = previous?.totals ?? { rowsIn: 0, eventsOut: 0, quarantined: 0, duplicates: 0 };
        return {
          tables: {
            [tables.events]: { rowsInserted: counts.events },
            [tables.quarantine]: { rowsInserted: counts.quarantined, rowsDeleted: requeued },
            [tables.deviceState]: devices,
            [SILVER_DQ]: { rowsInserted: dqRows },
          },
          event: { rowsIn: counts.rowsIn, rowsOut: counts.events, quarantined: counts.quarantined },
          extraInfo: { fromSnapshot: request.input.fromSnapshot, toSnapshot: request.input.toSnapshot },
          details: {
            ...counts, requeued, devicesChanged: devices.rowsInserted + devices.rowsUpdated, input: request.input, maxEventTime, hashedFrom,
            totals: {
              rowsIn: totals.rowsIn + counts.rowsIn, eventsOut: totals.eventsOut + counts.events,
              quarantined: totals.quarantined + counts.quarantined - requeued, duplicates: totals.duplicates + counts.duplicates,
            } satisfies SilverTotals,
          },
        };
      });
      const d = commit.details as { rowsIn: number; events: number; quarantined: number; duplicates: number; devicesChanged: number; requeued?: number };
      return {
        batchId: request.batchId, rowsIn: d.rowsIn, events: d.events, quarantined: d.quarantined, duplicates: d.duplicates,
        devicesChanged: d.devicesChanged, snapshot: commit.snapshot, alreadyCommitted: commit.alreadyCommitted, requeued: d.requeued ?? 0,
      };
    }).finally(() => {
      release();
      stopHeartbeat();
    });
  }

  /** Rebuilds silver's checkpoint from its fence row, for a workflow that starts without one. */
  async function readSilverCheckpoint(shard: SilverShard = SINGLE_SHARD): Promise<SilverCheckpoint> {
    return withLake(deps.lake, async (db) => {
      const fence = await readFence(db, silverShardOwner(shard));
      const details = fenceDetails<{ input: SilverInput; totals: SilverTotals }>(fence);
      if (!fence || !details) {
        return { nextBatchSeq: 0, bronzeSnapshot: 0, eventsVersion: 0, rowsIn: 0, eventsOut: 0, quarantined: 0, duplicates: 0, passes: 0 };
      }
      return {
        nextBatchSeq: fence.batchSeq + 1, bronzeSnapshot: details.input.toSnapshot,
        eventsVersion: await snapshotOfFence(db, fence), ...details.totals, passes: 0,
      };
    });
  }

  /**
   * The lake's silver shard count, every shard's tables made: recorded from the request (else the
   * worker's NETPULSE_SILVER_SHARDS, else the default) when silver is new; refused when the
   * request names another count than the lake's.
   */
  async function prepareSilverShards(request: { requested?: number }): Promise<number> {
    return withLake(deps.lake, (db) => prepareShards(db, request.requested, config.silverShards ?? DEFAULT_SILVER_SHARDS));
  }

  /** Moves the drained lake's silver to `shards` shards (lake/silver-layout.ts); refused unless drained. */
  async function reshardSilver(request: { shards: number }): Promise<ReshardReport> {
    const shards = shardCountSchema.parse(request.shards);
    return withLake(deps.lake, async (db) => {
      const from = await recordedShardCount(db);
      if (from === undefined) {
        await prepareShards(db, shards, shards);
        return { from: shards, to: shards, rows: { events: 0, quarantine: 0, deviceState: 0 }, bronzeSnapshot: 0, snapshot: 0 };
      }
      if (from === shards) return { from, to: shards, rows: { events: 0, quarantine: 0, deviceState: 0 }, bronzeSnapshot: 0, snapshot: 0 };
      const fenceOf = async (owner: string) => {
        const fence = await readFence(db, owner);
        return { details: fenceDetails<{ input: { toSnapshot: number } }>(fence), snapshot: await snapshotOfFence(db, fence) };
      };
      const goldMark = fenceDetails<{ silverToSnapshot: number }>(await readFence(db, 'gold'))?.silverToSnapshot ?? 0;
      return reshardSilverTables(db, from, shards, fenceOf, goldMark);
    });
  }

  return { planSilverBatch, runSilverBatch, readSilverCheckpoint, prepareSilverShards, reshardSilver };
}
