// Lake maintenance: what keeps a lake of continuous micro-batches small and fast. Inlined rows
// are flushed to Parquet, small files merged, snapshots past the retention expired (never one
// a downstream checkpoint still reads from), unreferenced files deleted, and landing files
// archived or deleted some time after they were taken (Auto Loader's cleanSource).
import type { DuckDBConnection } from '@duckdb/node-api';
import { mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { config } from '../config';
import { LAKE, metadataTable, withLake } from '../lake/catalog';
import { eventLogInsert, fenceDetails, readFence, snapshotOfFence } from '../lake/commit';
import { sqlString } from '../lake/duckdb';
import { maintenanceInputSchema, type LakeFiles, type MaintenanceInput, type MaintenanceReport } from '../rules/maintenance';
import type { SilverInput } from '../rules/silver';
import type { LakeDeps } from './bronze';
import { batchLog, heartbeatEvery } from './context';
import { GOLD_OWNER } from './gold';
import { SILVER_OWNER } from './silver';

async function lakeFiles(db: DuckDBConnection, catalogSchema: string): Promise<LakeFiles> {
  const meta = `__ducklake_metadata_${LAKE}.${catalogSchema}`;
  const [row] = (await db.runAndReadAll(`
    SELECT count(*) FILTER (WHERE end_snapshot IS NULL) AS live_files, coalesce(sum(file_size_bytes) FILTER (WHERE end_snapshot IS NULL), 0) AS live_bytes,
           count(*) + (SELECT count(*) FROM ${meta}.ducklake_files_scheduled_for_deletion) AS all_files,
           coalesce(sum(file_size_bytes), 0) AS all_bytes,
           (SELECT count(*) FROM ${meta}.ducklake_snapshot) AS snapshots
    FROM ${meta}.ducklake_data_file`)).getRowObjectsJson() as Record<string, string>[];
  return {
    liveFiles: Number(row.live_files), liveBytes: Number(row.live_bytes), allFiles: Number(row.all_files),
    allBytes: Number(row.all_bytes), snapshots: Number(row.snapshots),
  };
}

interface Floors {
  /** The last bronze snapshot silver has read, and the last silver snapshot gold has read. */
  silverMark: number;
  goldMark: number;
}

async function readFloors(db: DuckDBConnection): Promise<Floors> {
  const silver = await readFence(db, SILVER_OWNER);
  const gold = await readFence(db, GOLD_OWNER);
  return {
    silverMark: fenceDetails<{ input: SilverInput }>(silver)?.input.toSnapshot ?? 0,
    goldMark: fenceDetails<{ silverToSnapshot: number }>(gold)?.silverToSnapshot ?? 0,
  };
}

/**
 * Tables whose files may be merged now. DuckLake's merge (and flush of inlined rows) rewrites
 * the rows into new files, after which ducklake_table_changes no longer returns them for the
 * snapshots they were committed in (seen with DuckLake 1.4.4): a table is compacted only when
 * its downstream reader has read all of it — bronze tables up to silver's mark, silver tables
 * up to gold's. Gold and the bookkeeping tables have no incremental reader.
 */
async function compactableTables(db: DuckDBConnection, floors: Floors): Promise<{ compact: [string, string][]; deferred: string[] }> {
  const tables = (await db.runAndReadAll(`SELECT table_schema, table_name FROM information_schema.tables
    WHERE table_catalog = current_database() AND table_type = 'BASE TABLE' ORDER BY 1, 2`)).getRows().map((r) => [String(r[0]), String(r[1])] as [string, string]);
  const lastCommit = async (owner: string) => snapshotOfFence(db, await readFence(db, owner));
  const silverLast = await lastCommit(SILVER_OWNER);
  const compact: [string, string][] = [];
  const deferred: string[] = [];
  for (const [schema, name] of tables) {
    const last = schema === 'bronze' && name !== 'quarantine' ? await lastCommit(`bronze.${name}`) : schema === 'silver' ? silverLast : 0;
    const readTo = schema === 'bronze' ? floors.silverMark : floors.goldMark;
    if (last <= readTo) compact.push([schema, name]);
    else deferred.push(`${schema}.${name}`);
  }
  return { compact, deferred };
}

export function maintenanceActivities(deps: LakeDeps) {
  async function maintainLake(input: MaintenanceInput): Promise<MaintenanceReport> {
    const cfg = maintenanceInputSchema.parse(input);
    const started = Date.now();
    let phase = 'measuring';
    const stopHeartbeat = heartbeatEvery(5000, () => ({ phase }));
    try {
      const report = await withLake(deps.lake, async (db) => {
        const before = await lakeFiles(db, deps.lake.catalogSchema);
        phase = 'flushing inlined rows and merging small files';
        const floors = await readFloors(db);
        const { compact, deferred } = await compactableTables(db, floors);
        for (const [schema, name] of compact) {
          await db.run(`CALL ducklake_flush_inlined_data(${sqlString(LAKE)}, schema_name => ${sqlString(schema)}, table_name => ${sqlString(name)})`);
          await db.run(`CALL ducklake_merge_adjacent_files(${sqlString(LAKE)}, ${sqlString(name)}, schema => ${sqlString(schema)})`);
        }
        phase = 'expiring snapshots';
        // Silver reads bronze changes from its mark + 1 on, gold silver's: those snapshots stay.
        const floor = Math.min(floors.silverMark, floors.goldMark) + 1;
        const olderThan = cfg.expireOlderThan ?? new Date(Date.now() - cfg.snapshotRetentionHours * 3600_000).toISOString();
        const expirable = (await db.runAndReadAll(`
          SELECT snapshot_id FROM ${metadataTable(db, 'ducklake_snapshot')}
          WHERE snapshot_id < ${floor} AND snapshot_time < ${sqlString(olderThan)}::TIMESTAMPTZ
            AND snapshot_id < (SELECT id FROM ${LAKE}.current_snapshot())`)).getRows().map((r) => Number(r[0]));
        if (expirable.length > 0) await db.run(`CALL ducklake_expire_snapshots(${sqlString(LAKE)}, versions => [${expirable.join(', ')}])`);
        phase = 'deleting unreferenced files';
        await db.run(`CALL ducklake_cleanup_old_files(${sqlString(LAKE)}, cleanup_all => true)`);
        const after = await lakeFiles(db, deps.lake.catalogSchema);
        phase = 'landing retention';
        const landingFiles = await retainLanding(db, cfg.landing, cfg.landingRetentionHours, cfg.archivePath ?? path.join(config.dataDir, 'archive'));
        const result: MaintenanceReport = {
          before, after, floorSnapshot: floor, snapshotsExpired: expirable.length, tablesCompacted: compact.length, tablesDeferred: deferred,
          landingFiles, elapsedMs: Date.now() - started,
        };
        const { workflowId, runId } = batchLog('maintenance', LAKE);
        await db.run(eventLogInsert({ kind: 'maintenance', layer: 'lake', source: LAKE, durationMs: result.elapsedMs, workflowId, runId, details: result }, { once: true }));
        return result;
      });
      return report;
    } finally {
      stopHeartbeat();
    }
  }

  /** Landing files taken longer ago than the retention: archived, deleted, or kept. */
  async function retainLanding(db: DuckDBConnection, mode: 'keep' | 'archive' | 'delete', hours: number, archiveRoot: string) {
    const counts = { archived: 0, deleted: 0, missing: 0 };
    if (mode === 'keep') return counts;
    const root = path.resolve(deps.landingDir);
    const paths = (await db.runAndReadAll(`
      SELECT DISTINCT path FROM lake.file_ledger WHERE taken_at < now() - to_seconds(${Math.round(hours * 3600)}::BIGINT)`)).getRows().map((r) => String(r[0]));
    for (const file of paths) {
      // Only files under this worker's landing root: a ledger path elsewhere is not ours to touch.
      const relative = path.relative(root, path.resolve(file));
      if (relative.startsWith('..') || path.isAbsolute(relative)) continue;
      if (!statSync(file, { throwIfNoEntry: false })) {
        counts.missing++;
        continue;
      }
      if (mode === 'delete') {
        rmSync(file, { force: true });
        counts.deleted++;
      } else {
        const target = path.join(archiveRoot, relative);
        mkdirSync(path.dirname(target), { recursive: true });
        renameSync(file, target);
        counts.archived++;
      }
    }
    return counts;
  }

  return { maintainLake };
}
