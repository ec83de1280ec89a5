// Gold I/O: one table per business question, refreshed in one transaction per batch from
// silver (incrementally where the maths allows), each with a change feed.
import type { DuckDBConnection } from '@duckdb/node-api';
import { ApplicationFailure } from '@temporalio/common';
import { metadataTable, withLake } from '../lake/catalog';
import { missingTables } from '../lake/tables';
import { insertionsSql, readableMark, replaceKeys, replaceRows } from '../lake/changes';
import { commitBatch, fenceDetails, readFence, snapshotOfFence, type TableWrite } from '../lake/commit';
import { sqlString } from '../lake/duckdb';
import { sqlFile } from '../lake/sql-files';
import { SPEEDS_MBPS } from '../rules/events';
import { GOLD_TABLES, goldOptionsSchema, INCREMENTAL_KEYS, type GoldCheckpoint, type GoldOptions, type GoldRequest, type GoldResult } from '../rules/gold';
import type { LakeDeps } from './context';
import { batchLog, heartbeatEvery } from './context';
import { silverShardOwner, silverShards, silverShardTables } from '../rules/shards';
import { allShardsSql, recordedShardCount, shardCountAt, SILVER_VIEWS } from '../lake/silver-layout';

/** Tables whose SQL reads their own previous rows need explicit columns to be created. */
const SELF_REFERENCING: Record<string, string> = {
  events_per_minute: 'minute TIMESTAMP, dispositivo VARCHAR, status VARCHAR, events BIGINT',
  server_load_history: 'as_of TIMESTAMP, servidor VARCHAR, devices_connected BIGINT, mbps_in_use BIGINT, capacity_mbps BIGINT, utilisation_pct DOUBLE',
};

/** A refresh instant (ISO, UTC) as a DuckDB TIMESTAMP literal. */
const asOfLiteral = (asOf: string) => `TIMESTAMP ${sqlString(asOf.replace('T', ' ').replace('Z', ''))}`;

/** What a refresh reads of silver: every shard's tables at one lake snapshot. */
export interface SilverAt {
  shards: number;
  snapshot: number;
}

/** Silver's `kind` (all shards) as of the refresh's snapshot, as a relation; without one, its latest (the view). */
const silverRelation = (silver: SilverAt | undefined, kind: 'events' | 'deviceState') =>
  (silver ? `(${allShardsSql(silver.shards, kind, silver.snapshot)})` : SILVER_VIEWS[kind]);

/**
 * The question's SQL with its :parameters bound as literals; `:device_state` is silver's device
 * state, or the refresh's copy of it (stageDevices), and `:events` silver's events, both as of
 * the refresh's silver snapshot (every shard at once).
 */
export function goldSql(name: string, asOf: string, options: GoldOptions, silver?: SilverAt, deviceState = silverRelation(silver, 'deviceState')): string {
  const params: Record<string, string> = {
    device_state: deviceState,
    events: silverRelation(silver, 'events'),
    as_of: asOfLiteral(asOf),
    high_speed_mbps: String(options.highSpeedThresholdMbps),
    upgrade_pct: String(options.upgradeUtilisationPct),
    window_minutes: String(options.upgradeWindowMinutes),
    min_samples: String(options.upgradeMinSamples),
    heavy_factor: String(options.heavyClientFactor),
    heavy_per_server: String(options.heavyClientsPerServer),
    forecast_hours: String(options.forecastHours),
    forecast_min_samples: String(options.forecastMinSamples),
    forecast_min_span_minutes: String(options.forecastMinSpanMinutes),
    speeds: `[${SPEEDS_MBPS.join(', ')}]`,
  };
  return sqlFile('gold', name, params);
}

/** Up to this many devices, a refresh copies device state once instead of reading it seven times. */
export function stagedDevicesMax(): number {
  const raw = process.env.NETPULSE_GOLD_COPY_MAX_DEVICES ?? '200000';
  const max = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(max) || max < 0) {
    throw ApplicationFailure.nonRetryable(`NETPULSE_GOLD_COPY_MAX_DEVICES: "${raw}" is not a whole number ≥ 0 (the worker's environment)`, 'InvalidConfiguration');
  }
  return max;
}

/**
 * The device state the refresh's questions read: a temp copy when it is small (each statement on
 * a lake table costs catalog round trips and reads its file list), else the lake table itself.
 * One statement either way: the copy stops one row past the limit, so a large state costs a
 * bounded read, not a scan.
 */
async function stageDevices(db: DuckDBConnection, silver: SilverAt): Promise<string> {
  const max = stagedDevicesMax();
  await db.run(`CREATE OR REPLACE TEMP TABLE gold_devices AS SELECT * FROM ${silverRelation(silver, 'deviceState')} LIMIT ${Math.trunc(max) + 1}`);
  const [[staged]] = (await db.runAndReadAll('SELECT count(*) FROM gold_devices')).getRows();
  if (Number(staged) <= max) return 'gold_devices';
  await db.run('DROP TABLE gold_devices');
  return silverRelation(silver, 'deviceState');
}

/** Events every shard inserted in silver snapshots (from, to]; none from a reshard, which only moved them. */
function newEventsSql(shards: number, from: number, to: number): string {
  return silverShards(shards).map((s) => `SELECT hora_conexao, dispositivo, status FROM (${insertionsSql(silverShardTables(s).events, from, to)})
    WHERE snapshot_id NOT IN (SELECT snapshot_id FROM reshard_snapshots)`).join(' UNION ALL ');
}

async function stageInputs(db: DuckDBConnection, request: GoldRequest, silver: SilverAt, deviceState: string): Promise<void> {
  const from = await readableMark(db, request.silverFromSnapshot, 'gold');
  await db.run(`CREATE OR REPLACE TEMP TABLE reshard_snapshots AS SELECT snapshot_id FROM ${metadataTable(db, 'ducklake_snapshot_changes')}
    WHERE snapshot_id > ${Math.trunc(from)} AND snapshot_id <= ${Math.trunc(request.silverToSnapshot)} AND commit_message LIKE 'RESHARD %'`);
  const feed = request.silverToSnapshot > from
    ? newEventsSql(silver.shards, from, request.silverToSnapshot)
    : `SELECT hora_conexao, dispositivo, status FROM ${silverRelation(silver, 'events')} WHERE false`;
  // Counted as read: the only incremental input is per-minute counts (staging the feed's rows
  // took 9 s of a 21 s refresh after 10M events).
  await db.run(`CREATE OR REPLACE TEMP TABLE new_event_counts AS
    SELECT date_trunc('minute', hora_conexao) AS minute, dispositivo, status, count(*) AS events FROM (${feed}) GROUP BY ALL`);
  const overrides = Object.entries(request.options.serverCapacityMbps);
  await db.run(`CREATE OR REPLACE TEMP TABLE server_capacity AS
    SELECT servidor, coalesce(o.capacity_mbps, ${request.options.defaultServerCapacityMbps})::BIGINT AS capacity_mbps
    FROM (SELECT DISTINCT servidor FROM ${deviceState} WHERE servidor IS NOT NULL
          ${overrides.length ? `UNION SELECT servidor FROM (VALUES ${overrides.map(([s]) => `(${sqlString(s)})`).join(', ')}) v(servidor)` : ''})
    LEFT JOIN (${overrides.length ? `VALUES ${overrides.map(([s, c]) => `(${sqlString(s)}, ${c})`).join(', ')}` : 'SELECT NULL::VARCHAR, NULL::BIGINT WHERE false'}) o(servidor, capacity_mbps) USING (servidor)`);
}

async function ensureGold(db: DuckDBConnection, request: GoldRequest, silver: SilverAt): Promise<void> {
  for (const table of await missingTables(db, GOLD_TABLES.map((t) => `gold.${t}`))) {
    const name = table.slice('gold.'.length);
    const columns = SELF_REFERENCING[name];
    await db.run(columns
      ? `CREATE TABLE IF NOT EXISTS gold.${name} (${columns})`
      : `CREATE TABLE IF NOT EXISTS gold.${name} AS SELECT * FROM (${goldSql(name, request.asOf, request.options, silver)}) LIMIT 0`);
  }
}

export const GOLD_OWNER = 'gold';

/** The load history keeps `loadHistoryRetentionHours` before the refresh instant. */
async function expireLoadHistory(db: DuckDBConnection, request: GoldRequest): Promise<number> {
  return (await db.run(`DELETE FROM gold.server_load_history
    WHERE as_of < ${asOfLiteral(request.asOf)} - INTERVAL ${Math.trunc(request.options.loadHistoryRetentionHours * 3600)} SECOND`)).rowsChanged;
}

export function goldActivities(deps: LakeDeps) {
  /** Silver's latest commit (of any shard), the snapshot gold catches up to. */
  async function planGoldBatch(): Promise<{ silverSnapshot: number }> {
    return withLake(deps.lake, async (db) => {
      let silverSnapshot = 0;
      for (const shard of silverShards((await recordedShardCount(db)) ?? 1)) {
        silverSnapshot = Math.max(silverSnapshot, await snapshotOfFence(db, await readFence(db, silverShardOwner(shard))));
      }
      return { silverSnapshot };
    });
  }

  async function refreshGold(given: GoldRequest): Promise<GoldResult> {
    // Options from an owner started by an older version lack newer settings: their defaults apply.
    const request = { ...given, options: goldOptionsSchema.parse(given.options) };
    const stopHeartbeat = heartbeatEvery(5000, () => ({ phase: 'refreshing', tables: GOLD_TABLES.length }));
    return withLake(deps.lake, async (db) => {
      // One snapshot for every read of silver: shards commit while gold refreshes.
      const silver = { shards: await shardCountAt(db, request.silverToSnapshot), snapshot: request.silverToSnapshot };
      const deviceState = await stageDevices(db, silver);
      await stageInputs(db, request, silver, deviceState);
      await ensureGold(db, request, silver);
      let rowsChanged = 0;
      const identity = { owner: GOLD_OWNER, batchId: request.batchId, batchSeq: request.batchSeq, operation: 'REFRESH', log: batchLog('gold', 'gold') };
      const commit = await commitBatch(db, identity, async () => {
        const tables: Record<string, TableWrite> = {};
        for (const name of GOLD_TABLES) {
          const keys = INCREMENTAL_KEYS[name];
          const sql = goldSql(name, request.asOf, request.options, silver, deviceState);
          const written = keys ? await replaceKeys(db, `gold.${name}`, keys, sql) : await replaceRows(db, `gold.${name}`, sql);
          if (name === 'server_load_history') written.rowsDeleted += await expireLoadHistory(db, request);
          tables[`gold.${name}`] = written;
          rowsChanged += written.rowsInserted + written.rowsDeleted;
        }
        const newEvents = Number((await db.runAndReadAll('SELECT coalesce(sum(events), 0) FROM new_event_counts')).getRows()[0][0]);
        return {
          tables,
          event: { rowsIn: newEvents, rowsOut: rowsChanged, quarantined: 0 },
          extraInfo: { silverToSnapshot: request.silverToSnapshot, asOf: request.asOf },
          details: { asOf: request.asOf, silverFromSnapshot: request.silverFromSnapshot, silverToSnapshot: request.silverToSnapshot, rowsChanged },
        };
      });
      await db.run('DROP TABLE new_event_counts; DROP TABLE server_capacity; DROP TABLE reshard_snapshots; DROP TABLE IF EXISTS gold_devices');
      return {
        batchId: request.batchId, asOf: request.asOf, snapshot: commit.snapshot, alreadyCommitted: commit.alreadyCommitted,
        rowsChanged: Number((commit.details as { rowsChanged: number }).rowsChanged),
      };
    }).finally(stopHeartbeat);
  }

  /** Rebuilds gold's checkpoint from its fence row, for a workflow that starts without one. */
  async function readGoldCheckpoint(): Promise<GoldCheckpoint> {
    return withLake(deps.lake, async (db) => {
      const fence = await readFence(db, GOLD_OWNER);
      const details = fenceDetails<{ asOf: string; silverToSnapshot: number }>(fence);
      if (!fence || !details) return { nextBatchSeq: 0, silverSnapshot: 0, goldSnapshot: 0, refreshes: 0, passes: 0 };
      return {
        nextBatchSeq: fence.batchSeq + 1, silverSnapshot: details.silverToSnapshot, goldSnapshot: await snapshotOfFence(db, fence),
        lastAsOf: details.asOf, refreshes: fence.batchSeq + 1, passes: 0,
      };
    });
  }

  return { planGoldBatch, refreshGold, readGoldCheckpoint };
}
