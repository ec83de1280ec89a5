// Lake maintenance: what keeps a lake of continuous micro-batches small and fast. Inlined rows
// are flushed to Parquet, small files merged, snapshots past the retention expired (never one
// a downstream checkpoint still reads from), unreferenced files deleted, and landing files
// archived or deleted some time after they were taken (Auto Loader's cleanSource).
import type { DuckDBConnection } from '@duckdb/node-api';
import { config } from '../config';
import { LAKE, metadataTable, withLake } from '../lake/catalog';
import { eventLogInsert, fenceDetails, readFence } from '../lake/commit';
import { sqlString } from '../lake/duckdb';
import { defaultArchiveRoot, landingStore } from '../lake/landing-store';
import { maintenanceInputSchema, type LakeFiles, type MaintenanceInput, type MaintenanceReport, type TableCompaction } from '../rules/maintenance';
import type { SilverInput } from '../rules/silver';
import type { LakeDeps } from './context';
import { batchLog, heartbeatEvery } from './context';
import { GOLD_OWNER } from './gold';
import { silverShardOwner, silverShards } from '../rules/shards';
import { recordedShardCount } from '../lake/silver-layout';

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
  // The shard furthest behind holds the floor: bronze changes it has not read stay.
  const marks: number[] = [];
  for (const shard of silverShards((await recordedShardCount(db)) ?? 1)) {
    marks.push(fenceDetails<{ input: SilverInput }>(await readFence(db, silverShardOwner(shard)))?.input.toSnapshot ?? 0);
  }
  const gold = await readFence(db, GOLD_OWNER);
  return {
    silverMark: Math.min(...marks),
    goldMark: fenceDetails<{ silverToSnapshot: number }>(gold)?.silverToSnapshot ?? 0,
  };
}

/** Every table of the lake: each one's inlined rows are flushed and its small files merged. */
async function lakeTables(db: DuckDBConnection): Promise<[string, string][]> {
  return (await db.runAndReadAll(`SELECT table_schema, table_name FROM information_schema.tables
    WHERE table_catalog = current_database() AND table_type = 'BASE TABLE' ORDER BY 1, 2`)).getRows().map((r) => [String(r[0]), String(r[1])] as [string, string]);
}

/**
 * Records the lake's live data files and returns the snapshot read just before. A file another
 * writer commits later begins after that snapshot; a file a flush or merge writes begins at the
 * oldest snapshot of its rows, so the two are never mistaken for each other.
 */
async function recordLiveFiles(db: DuckDBConnection, into: string): Promise<number> {
  const [[snapshot]] = (await db.runAndReadAll(`SELECT id FROM ${LAKE}.current_snapshot()`)).getRows();
  await db.run(`CREATE OR REPLACE TEMP TABLE ${into} AS SELECT table_id, data_file_id, record_count, file_size_bytes, begin_snapshot
    FROM ${metadataTable(db, 'ducklake_data_file')} WHERE end_snapshot IS NULL`);
  return Number(snapshot);
}

/**
 * Flushes each table's inlined rows to Parquet and merges its small files, and says per table
 * what that did: the files and bytes before and after, the rows the flush moved out of the
 * catalog, and the files the merge replaced with what it wrote instead.
 */
async function compactTables(db: DuckDBConnection, compact: [string, string][]): Promise<TableCompaction[]> {
  if (compact.length === 0) return [];
  await db.run(`CREATE OR REPLACE TEMP TABLE compacted AS
    SELECT t.table_id, s.schema_name || '.' || t.table_name AS name
    FROM ${metadataTable(db, 'ducklake_table')} t JOIN ${metadataTable(db, 'ducklake_schema')} s USING (schema_id)
    WHERE t.end_snapshot IS NULL AND s.end_snapshot IS NULL
      AND s.schema_name || '.' || t.table_name IN (${compact.map(([schema, name]) => sqlString(`${schema}.${name}`)).join(', ')})`);
  const beforeFlush = await recordLiveFiles(db, 'files_before');
  for (const [schema, name] of compact) {
    await db.run(`CALL ducklake_flush_inlined_data(${sqlString(LAKE)}, schema_name => ${sqlString(schema)}, table_name => ${sqlString(name)})`);
  }
  const beforeMerge = await recordLiveFiles(db, 'files_flushed');
  for (const [schema, name] of compact) {
    await db.run(`CALL ducklake_merge_adjacent_files(${sqlString(LAKE)}, ${sqlString(name)}, schema => ${sqlString(schema)})`);
  }
  await recordLiveFiles(db, 'files_merged');
  const rows = (await db.runAndReadAll(`
    WITH per_step AS (
      SELECT table_id, 'before' AS step, count(*) AS files, sum(file_size_bytes) AS bytes, 0 AS rows FROM files_before GROUP BY ALL
      UNION ALL SELECT table_id, 'flushed', count(*), sum(file_size_bytes), sum(record_count) FROM files_flushed
        WHERE data_file_id NOT IN (SELECT data_file_id FROM files_before) AND begin_snapshot <= ${beforeFlush} GROUP BY ALL
      UNION ALL SELECT table_id, 'replaced', count(*), sum(file_size_bytes), 0 FROM files_flushed
        WHERE data_file_id NOT IN (SELECT data_file_id FROM files_merged) GROUP BY ALL
      UNION ALL SELECT table_id, 'written', count(*), sum(file_size_bytes), 0 FROM files_merged
        WHERE data_file_id NOT IN (SELECT data_file_id FROM files_flushed) AND begin_snapshot <= ${beforeMerge} GROUP BY ALL),
    with_deletes AS (
      SELECT m.table_id, count(DISTINCT m.data_file_id) AS deleted_files FROM files_merged m
      JOIN ${metadataTable(db, 'ducklake_delete_file')} d ON d.data_file_id = m.data_file_id AND d.end_snapshot IS NULL GROUP BY ALL)
    SELECT c.name,
      ${['before', 'flushed', 'replaced', 'written'].map((step) => `
      coalesce(sum(files) FILTER (WHERE step = '${step}'), 0)::BIGINT AS ${step}_files,
      coalesce(sum(bytes) FILTER (WHERE step = '${step}'), 0)::BIGINT AS ${step}_bytes`).join(',')},
      coalesce(sum(rows) FILTER (WHERE step = 'flushed'), 0)::BIGINT AS flushed_rows,
      coalesce(any_value(w.deleted_files), 0)::BIGINT AS with_deletes
    FROM compacted c LEFT JOIN per_step p USING (table_id) LEFT JOIN with_deletes w USING (table_id)
    GROUP BY c.name ORDER BY c.name`)).getRowObjectsJson() as Record<string, string>[];
  await db.run('DROP TABLE compacted; DROP TABLE files_before; DROP TABLE files_flushed; DROP TABLE files_merged');
  return rows.map((r) => {
    const n = (key: string) => Number(r[key]);
    return {
      table: r.name,
      files: { before: n('before_files'), after: n('before_files') + n('flushed_files') - n('replaced_files') + n('written_files') },
      bytes: { before: n('before_bytes'), after: n('before_bytes') + n('flushed_bytes') - n('replaced_bytes') + n('written_bytes') },
      flushed: { rows: n('flushed_rows'), files: n('flushed_files'), bytes: n('flushed_bytes') },
      merged: { files: n('replaced_files'), bytes: n('replaced_bytes'), intoFiles: n('written_files'), intoBytes: n('written_bytes') },
      filesWithDeletes: n('with_deletes'),
    };
  });
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
        const tables = await compactTables(db, await lakeTables(db));
        phase = 'expiring snapshots';
        const floors = await readFloors(db);
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
        phase = 'deleting orphaned files';
        const orphansDeleted = (await db.runAndReadAll(`SELECT count(*) FROM ducklake_delete_orphaned_files(${sqlString(LAKE)},
          older_than => now() - to_seconds(${Math.round(cfg.orphanGraceHours * 3600)}::BIGINT))`)).getRows()[0]?.[0];
        const after = await lakeFiles(db, deps.lake.catalogSchema);
        phase = 'landing retention';
        const landingFiles = await retainLanding(db, cfg.landing, cfg.landingRetentionHours, cfg.archivePath ?? defaultArchiveRoot(deps.landingDir, config.dataDir));
        const result: MaintenanceReport = {
          before, after, floorSnapshot: floor, snapshotsExpired: expirable.length, orphansDeleted: Number(orphansDeleted ?? 0), tables,
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
    const paths = (await db.runAndReadAll(`
      SELECT DISTINCT path FROM lake.file_ledger WHERE taken_at < now() - to_seconds(${Math.round(hours * 3600)}::BIGINT)`)).getRows().map((r) => String(r[0]));
    const store = landingStore(deps.landingDir);
    for (const file of paths) {
      // Only files under this worker's landing root: a ledger path elsewhere is not ours to touch.
      const relative = store.relative(file);
      if (relative === undefined) continue;
      if (!(await store.exists(file))) {
        counts.missing++;
      } else if (mode === 'delete') {
        await store.remove(file);
        counts.deleted++;
      } else {
        await store.move(file, store.join(archiveRoot, relative));
        counts.archived++;
      }
    }
    return counts;
  }

  return { maintainLake };
}
