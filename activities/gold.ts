// Gold I/O: one table per business question, refreshed in one transaction per batch from
// silver (incrementally where the maths allows), each with a change feed.
import type { DuckDBConnection } from '@duckdb/node-api';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { config } from '../config';
import { withLake } from '../lake/catalog';
import { changeFeedSql, ensureMutableTable, replaceWithChanges } from '../lake/changes';
import { commitTables, type BatchWrite } from '../lake/commit';
import { sqlString } from '../lake/duckdb';
import { SPEEDS_MBPS } from '../rules/events';
import { GOLD_TABLES, type GoldCheckpoint, type GoldOptions, type GoldRequest, type GoldResult } from '../rules/gold';
import type { LakeDeps } from './bronze';
import { batchLog, heartbeatEvery } from './context';
import { SILVER_DEVICE_STATE, SILVER_EVENTS } from './silver';

/** Tables whose SQL reads their own previous rows need explicit columns to be created. */
const SELF_REFERENCING: Record<string, string> = {
  events_per_minute: 'minute TIMESTAMP, dispositivo VARCHAR, status VARCHAR, events BIGINT',
  server_load_history: 'as_of TIMESTAMP, servidor VARCHAR, devices_connected BIGINT, mbps_in_use BIGINT, capacity_mbps BIGINT, utilisation_pct DOUBLE',
};

/** The question's SQL with its :parameters bound as literals. */
export function goldSql(name: string, asOf: string, options: GoldOptions): string {
  const params: Record<string, string> = {
    as_of: `TIMESTAMP ${sqlString(asOf.replace('T', ' ').replace('Z', ''))}`,
    high_speed_mbps: String(options.highSpeedThresholdMbps),
    upgrade_pct: String(options.upgradeUtilisationPct),
    window_minutes: String(options.upgradeWindowMinutes),
    min_samples: String(options.upgradeMinSamples),
    heavy_factor: String(options.heavyClientFactor),
    speeds: `[${SPEEDS_MBPS.join(', ')}]`,
  };
  const text = readFileSync(path.join(config.projectRoot, 'sql', 'gold', `${name}.sql`), 'utf8');
  return text.replace(/:([a-z_]+)/g, (match, key: string) => {
    if (!(key in params)) throw new Error(`sql/gold/${name}.sql: unknown parameter :${key}`);
    return params[key];
  });
}

async function stageInputs(db: DuckDBConnection, request: GoldRequest): Promise<void> {
  const feed = request.eventsToVersion > request.eventsFromVersion
    ? await changeFeedSql(db, SILVER_EVENTS, request.eventsFromVersion, request.eventsToVersion)
    : `SELECT * FROM ${SILVER_EVENTS} WHERE false`;
  await db.run(`CREATE OR REPLACE TEMP TABLE new_events AS SELECT * FROM (${feed})`);
  const overrides = Object.entries(request.options.serverCapacityMbps);
  await db.run(`CREATE OR REPLACE TEMP TABLE server_capacity AS
    SELECT servidor, coalesce(o.capacity_mbps, ${request.options.defaultServerCapacityMbps})::BIGINT AS capacity_mbps
    FROM (SELECT DISTINCT servidor FROM ${SILVER_DEVICE_STATE} WHERE servidor IS NOT NULL
          ${overrides.length ? `UNION SELECT servidor FROM (VALUES ${overrides.map(([s]) => `(${sqlString(s)})`).join(', ')}) v(servidor)` : ''})
    LEFT JOIN (${overrides.length ? `VALUES ${overrides.map(([s, c]) => `(${sqlString(s)}, ${c})`).join(', ')}` : 'SELECT NULL::VARCHAR, NULL::BIGINT WHERE false'}) o(servidor, capacity_mbps) USING (servidor)`);
}

async function ensureGold(db: DuckDBConnection, request: GoldRequest): Promise<void> {
  await db.run('CREATE SCHEMA IF NOT EXISTS gold');
  for (const name of GOLD_TABLES) {
    const columns = SELF_REFERENCING[name];
    await ensureMutableTable(db, `gold.${name}`, columns ? { columns } : { as: goldSql(name, request.asOf, request.options) });
  }
}

export function goldActivities(deps: LakeDeps) {
  /** Latest versions of the silver tables gold reads. */
  async function planGoldBatch(): Promise<{ eventsVersion: number; deviceStateVersion: number }> {
    return withLake(deps.lakeFile, async (db) => {
      const [row] = (await db.runAndReadAll(`
        SELECT coalesce(max(version) FILTER (WHERE table_name = ${sqlString(SILVER_EVENTS)}), 0) AS e,
               coalesce(max(version) FILTER (WHERE table_name = ${sqlString(SILVER_DEVICE_STATE)}), 0) AS d
        FROM lake.commit_log`)).getRowObjectsJson() as { e: string; d: string }[];
      return { eventsVersion: Number(row.e), deviceStateVersion: Number(row.d) };
    });
  }

  async function refreshGold(request: GoldRequest): Promise<GoldResult> {
    const tables = GOLD_TABLES.map((t) => `gold.${t}`);
    return withLake(deps.lakeFile, async (db) => {
      // Rows silver deleted or appended since the last checkpoint hold memory that the WAL size
      // does not show; without this, the first refresh over 10M rows ran out of a 256 MB limit
      // (a CHECKPOINT first made it pass). Cheap when little changed; skipped if another
      // transaction holds the lock.
      let phase = 'checkpointing';
      const stopHeartbeat = heartbeatEvery(5000, () => ({ phase, tables: tables.length }));
      try {
        await db.run('CHECKPOINT').catch(() => undefined);
        phase = 'refreshing';
        return await refresh(db);
      } finally {
        stopHeartbeat();
      }
    });

    async function refresh(db: DuckDBConnection): Promise<GoldResult> {
      let rowsChanged = 0;
      const commits = await commitTables(db, tables, { batchId: request.batchId, batchSeq: request.batchSeq, operation: 'REFRESH', log: batchLog('gold', 'gold') }, async (v) => {
        await ensureGold(db, request);
        await stageInputs(db, request);
        const written: Record<string, BatchWrite> = {};
        for (const name of GOLD_TABLES) {
          const table = `gold.${name}`;
          written[table] = await replaceWithChanges(db, table, goldSql(name, request.asOf, request.options), v[table]);
          rowsChanged += (written[table].rowsInserted ?? 0) + (written[table].rowsDeleted ?? 0);
          written[table].details = {
            asOf: request.asOf, eventsToVersion: request.eventsToVersion, deviceStateVersion: request.deviceStateVersion,
          };
        }
        const newEvents = Number((await db.runAndReadAll('SELECT count(*) FROM new_events')).getRows()[0][0]);
        written[tables[0]].event = { rowsIn: newEvents, rowsOut: rowsChanged, quarantined: 0 };
        await db.run('DROP TABLE new_events');
        await db.run('DROP TABLE server_capacity');
        return written;
      });
      const first = commits[tables[0]];
      return {
        batchId: request.batchId, asOf: request.asOf, rowsChanged, alreadyCommitted: first.alreadyCommitted,
        versions: Object.fromEntries(tables.map((t) => [t, commits[t].version])),
      };
    }
  }

  /** Rebuilds gold's checkpoint from its last commit, for a workflow that starts without one. */
  async function readGoldCheckpoint(): Promise<GoldCheckpoint> {
    return withLake(deps.lakeFile, async (db) => {
      const rows = (await db.runAndReadAll(`
        SELECT batch_seq, details FROM lake.commit_log WHERE table_name = 'gold.${GOLD_TABLES[0]}'
        ORDER BY version DESC LIMIT 1`)).getRowObjectsJson() as { batch_seq: string; details: string }[];
      if (rows.length === 0) return { nextBatchSeq: 0, eventsVersion: 0, deviceStateVersion: 0, refreshes: 0, passes: 0 };
      const d = JSON.parse(rows[0].details) as { asOf: string; eventsToVersion: number; deviceStateVersion: number };
      return {
        nextBatchSeq: Number(rows[0].batch_seq) + 1, eventsVersion: d.eventsToVersion, deviceStateVersion: d.deviceStateVersion,
        lastAsOf: d.asOf, refreshes: Number(rows[0].batch_seq) + 1, passes: 0,
      };
    });
  }

  return { planGoldBatch, refreshGold, readGoldCheckpoint };
}
