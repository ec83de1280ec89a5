// Input of the maintenance workflow (compaction, snapshot expiry, file cleanup, landing retention).
import { z } from 'zod';
import { isAbsoluteLocation } from './landing';

export const maintenanceInputSchema = z
  .object({
    /** Snapshots younger than this stay for time travel (AT VERSION / TIMESTAMP, report --as-of). */
    snapshotRetentionHours: z.number().min(0).max(24 * 365).default(24),
    /** Expire snapshots older than this instant instead (ISO); the downstream floor still holds. */
    expireOlderThan: z.iso.datetime({ offset: true }).optional(),
    /** Like Auto Loader's cleanSource: what happens to landing files some time after ingestion. */
    landing: z.enum(['keep', 'archive', 'delete']).default('keep'),
    landingRetentionHours: z.number().min(0).max(24 * 365).default(24),
    /** Where `archive` moves landing files (same relative path); default: <data dir>/archive, or `archive` beside an s3:// landing zone. */
    archivePath: z.string().refine(isAbsoluteLocation, 'must be an absolute path or an s3://bucket/prefix').optional(),
    /**
     * Files under the data path that no snapshot references (a writer killed between its upload and
     * its commit leaves some) are deleted once older than this: a younger one may be a batch's
     * upload about to commit. 0 only when no writer runs.
     */
    orphanGraceHours: z.number().min(0).max(24 * 365).default(24),
  })
  .strict();
export type MaintenanceInput = z.input<typeof maintenanceInputSchema>;
export type MaintenanceConfig = z.output<typeof maintenanceInputSchema>;

export interface LakeFiles {
  /** Live data files (referenced by the latest snapshot) and their bytes. */
  liveFiles: number;
  liveBytes: number;
  /** Every data file the catalog still knows: live, or kept for time travel, or waiting for cleanup. */
  allFiles: number;
  allBytes: number;
  snapshots: number;
}

/**
 * What maintenance did to one table's live data files. Files other writers commit while it runs
 * are not counted: they begin after the snapshot each step started from.
 */
export interface TableCompaction {
  table: string;
  files: { before: number; after: number };
  bytes: { before: number; after: number };
  /** Rows moved out of the catalog (inlined) into Parquet, and the files that took them: data moving, not growth. */
  flushed: { rows: number; files: number; bytes: number };
  /** The files the merge replaced, and the files it wrote instead. */
  merged: { files: number; bytes: number; intoFiles: number; intoBytes: number };
  /** Live files with deleted rows after maintenance: DuckLake's merge leaves them as they are. */
  filesWithDeletes: number;
}

export interface MaintenanceReport {
  before: LakeFiles;
  after: LakeFiles;
  /** The oldest snapshot a downstream checkpoint still reads from; never expired. */
  floorSnapshot: number;
  snapshotsExpired: number;
  /** Files under the data path no snapshot referenced, deleted (absent in reports from before it was done). */
  orphansDeleted?: number;
  /** Every table whose files maintenance flushed and merged, whether or not there was anything to do. */
  tables: TableCompaction[];
  landingFiles: { archived: number; deleted: number; missing: number };
  elapsedMs: number;
}

export const MAINTENANCE_SCHEDULE_ID = 'netpulse-maintenance';
