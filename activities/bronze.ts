// Bronze I/O: plan a source's next bounded batch and ingest it exactly once (rows + lineage +
// ledger + commit in one transaction). Listing lives in bronze-listing.ts, schemas and rescue in
// bronze-schema.ts.
import type { DuckDBConnection } from '@duckdb/node-api';
import { statSync } from 'node:fs';
import { log } from '@temporalio/activity';
import { withLake } from '../lake/catalog';
import { tableColumns } from '../lake/tables';
import { commitBatch, fenceDetails, findCommitted, readFence, snapshotOfFence, type BatchIdentity, type CommitInfo } from '../lake/commit';
import { qualified, sqlFilePath, sqlString } from '../lake/duckdb';
import { assertLandingPath } from '../lake/landing';
import { isObjectUrl } from '../lake/object-store';
import { config } from '../config';
import { batchLog, heartbeatEvery, isRetry, type LakeDeps } from './context';
import { listFiles, sampleFiles, sourceDir, statAll, waitingFiles, withinRowBudget } from './bronze-listing';
import {
  ensureTable, evolveSchema, fileSchemas, findUnscannable, notALandingFile, projection, sampleSchemas, type BadFile, type Column, type ReadableFile,
} from './bronze-schema';
import {
  bronzeTable, declaredTypes, type BronzeCheckpoint, type IngestRequest, type IngestResult, type LandingFileInfo,
  type PlanRequest, type PlanResult, type Source,
} from '../rules/bronze';

export function bronzeActivities(deps: LakeDeps) {
  /** The next batch of a source: files not in the ledger, oldest first, within the batch bounds. */
  async function planBronzeBatch(request: PlanRequest): Promise<PlanResult> {
    const started = performance.now();
    const listedAtMs = Date.now();
    const root = request.landingPath ?? deps.landingDir;
    const dir = sourceDir(request.source, root);
    assertLandingPath(dir, deps.landingRoots ?? [...config.landingRoots, deps.landingDir]);
    // A source folder may not exist yet (nothing landed there); a missing landing zone is said, not listed as empty.
    if (!isObjectUrl(root) && !statSync(root, { throwIfNoEntry: false })?.isDirectory()) {
      return { files: [], waiting: 0, listedAtMs, elapsedMs: 0, landingMissing: `the landing folder ${root} does not exist (or is not a folder)` };
    }
    const listed = await listFiles(dir);
    const cutoff = request.cutoffMs ?? listedAtMs;
    return withLake(deps.lake, async (db) => {
      const { files, waiting } = await waitingFiles(db, request, listed, cutoff, listedAtMs);
      const batch = await withinRowBudget(db, files, request.maxRows);
      return { files: batch, waiting, listedAtMs, elapsedMs: Math.round(performance.now() - started) };
    });
  }

  /**
   * Ingests one batch: plans it (unless the workflow sent the files, as histories from before
   * in-batch planning do), then rows + lineage + ledger + commit in one transaction. A retry of a
   * committed batch returns the fence's result without planning.
   */
  async function ingestBronzeBatch(request: IngestRequest): Promise<IngestResult> {
    const started = performance.now();
    const table = bronzeTable(request.source);
    let commit = isRetry(request.attempt) ? await withLake(deps.lake, (db) => findCommitted(db, ownerIdentity(request))) : undefined;
    if (!commit) {
      const plan = request.plan && (await planBronzeBatch(request.plan));
      const files = request.files ?? plan?.files ?? [];
      if (files.length === 0) {
        return emptyResult(request, plan, Math.round(performance.now() - started));
      }
      const planned = plan && { cutoffMs: request.plan?.cutoffMs ?? plan.listedAtMs, waitingAfter: plan.waiting - files.length };
      commit = await ingestOnce({ ...request, files }, planned);
    }
    const next = request.next && (await planBronzeBatch(request.next));
    return { ...describeCommit(table, commit), ...(next && { next }), elapsedMs: Math.round(performance.now() - started) };
  }

  /** The batch's commit: written now, or found when an earlier attempt already committed it. */
  async function ingestOnce(request: IngestRequest & { files: LandingFileInfo[] }, planned?: PlannedBatch): Promise<CommitInfo> {
    return withLake(deps.lake, async (db) => {
      let phase = 'checking files';
      let checked = 0;
      const stopHeartbeat = heartbeatEvery(2000, () => ({ phase, filesChecked: checked, filesTotal: request.files.length }));
      try {
        const bad: BadFile[] = [];
        const present: LandingFileInfo[] = [];
        const current = await statAll(request.files.map((f) => f.path));
        request.files.forEach((file, i) => {
          const problem = notALandingFile(current[i]);
          if (problem) bad.push({ ...file, error: problem });
          else present.push(file);
        });
        const graceSeconds = request.plan?.emptyFileGraceSeconds ?? request.next?.emptyFileGraceSeconds ?? 30;
        const schemas = await fileSchemas(db, present, graceSeconds, () => checked++);
        bad.push(...schemas.bad);
        const readable = schemas.readable;
        checked = request.files.length;
        phase = 'writing';
        const hints = declaredTypes(request.source);
        // A new table's columns are inferred from the batch's files and the source's next ones (a sample, as Auto Loader does).
        const sample = async () => sampleSchemas(db, await sampleFiles(sourceDir(request.source, request.plan?.landingPath ?? deps.landingDir), request.files));
        const columns = await ensureTable(db, bronzeTable(request.source), readable, hints, sample);
        let commit: CommitInfo;
        let quarantined = bad;
        try {
          commit = await writeBatch(db, request, columns, readable, bad, planned);
        } catch (error) {
          // A file whose footer reads but whose data does not: find it, quarantine it, write the rest.
          phase = 'scanning files after a failed write';
          const unreadable = await findUnscannable(db, readable, graceSeconds);
          if (unreadable.length === 0) throw error;
          const names = new Set(unreadable.map((f) => f.path));
          phase = 'writing';
          quarantined = [...bad, ...unreadable];
          commit = await writeBatch(db, request, columns, readable.filter((f) => !names.has(f.path)), quarantined, planned);
        }
        // In the worker's log too (paths and reasons, no rows), besides bronze.quarantine and `status`.
        if (!commit.alreadyCommitted) {
          for (const file of quarantined) log.warn('landing file quarantined', { table: bronzeTable(request.source), path: file.path, reason: file.error });
        }
        return commit;
      } finally {
        stopHeartbeat();
      }
    });
  }

  /** Rebuilds a checkpoint from the lake (fence, ledger, table), for a workflow that starts without one. */
  async function readBronzeCheckpoint(source: Source): Promise<BronzeCheckpoint> {
    const table = bronzeTable(source);
    return withLake(deps.lake, async (db) => {
      const fence = await readFence(db, table);
      const last = fenceDetails<{ schemaVersion?: number }>(fence);
      const [row] = (await db.runAndReadAll(`
        SELECT count(*) FILTER (WHERE outcome = 'ingested') AS ingested, count(*) FILTER (WHERE outcome = 'quarantined') AS quarantined
        FROM lake.file_ledger WHERE table_name = ${sqlString(table)}`)).getRowObjectsJson() as Record<string, string>[];
      const exists = (await tableColumns(db, table)).size > 0;
      const rows = exists ? Number((await db.runAndReadAll(`SELECT count(*) FROM ${qualified(table)}`)).getRows()[0][0]) : 0;
      const version = await snapshotOfFence(db, fence);
      return {
        nextBatchSeq: (fence?.batchSeq ?? -1) + 1, version, rowsIngested: rows,
        filesIngested: Number(row.ingested), filesQuarantined: Number(row.quarantined),
        schemaVersion: last?.schemaVersion ?? 0, passes: 0,
      };
    });
  }

  return { planBronzeBatch, ingestBronzeBatch, readBronzeCheckpoint };
}

function ownerIdentity(request: IngestRequest): BatchIdentity {
  const table = bronzeTable(request.source);
  return { owner: table, batchId: request.batchId, batchSeq: request.batchSeq, operation: 'STREAMING UPDATE', log: batchLog('bronze', table) };
}

/** The plan's facts kept with the commit, so a retry that finds it committed answers as the first attempt would. */
interface PlannedBatch {
  cutoffMs: number;
  waitingAfter: number;
}

/** Nothing was waiting: no commit, and the batch number stays free. */
function emptyResult(request: IngestRequest, plan: PlanResult | undefined, elapsedMs: number): IngestResult {
  return {
    batchId: request.batchId, version: 0, rows: 0, filesIngested: 0, filesQuarantined: 0, schemaVersion: 0, newColumns: [],
    alreadyCommitted: false, committedAt: '', elapsedMs, cutoffMs: request.plan?.cutoffMs ?? plan?.listedAtMs, waitingAfter: 0,
    landingMissing: plan?.landingMissing,
  };
}

async function writeBatch(
  db: DuckDBConnection, request: IngestRequest, columns: Map<string, string>, readable: ReadableFile[], bad: BadFile[], planned?: PlannedBatch,
): Promise<CommitInfo> {
  const table = bronzeTable(request.source);
  return commitBatch(db, ownerIdentity(request), async () => {
    let rows = 0;
    let evolution = { added: [] as Column[], schemaVersion: 0, columns: new Map<string, string>() };
    if (readable.length > 0) {
      evolution = await evolveSchema(db, table, columns, readable, declaredTypes(request.source), request.batchId);
      const groups = new Map<string, ReadableFile[]>();
      for (const file of readable) {
        const key = JSON.stringify(file.columns);
        groups.set(key, [...(groups.get(key) ?? []), file]);
      }
      for (const files of groups.values()) {
        // Same-schema files: no union_by_name; lineage looked up by file_index in the file list
        // (cheaper per row than filename = true and a join on the path).
        const fileName = `[${files.map((f) => sqlString(f.path)).join(', ')}][file_index::BIGINT + 1]`;
        const { select, rescued } = projection(evolution.columns, files[0].columns, fileName);
        const result = await db.run(`
          INSERT INTO ${qualified(table)} BY NAME
          SELECT ${select.join(', ')},
                 ${fileName} AS rastreamento_source,
                 ${sqlString(request.source.label)} AS source,
                 make_timestamp([${files.map((f) => f.mtimeMs).join(', ')}][file_index::BIGINT + 1] * 1000) AS data_arquivo_ingestao,
                 true AS status,
                 ${rescued} AS _rescued_data,
                 ${sqlString(request.batchId)} AS _batch_id,
                 file_row_number AS _row_index
          FROM read_parquet([${files.map((f) => sqlFilePath(f.path)).join(', ')}])`);
        rows += result.rowsChanged;
      }
    }
    const ledger = [
      ...readable.map((f) => ({ ...f, outcome: 'ingested' })),
      ...bad.map((f) => ({ ...f, outcome: 'quarantined' })),
    ];
    if (ledger.length > 0) {
      await db.run(`INSERT INTO lake.file_ledger VALUES ${ledger
        .map((f) => `(${sqlString(table)}, ${sqlString(f.path)}, ${f.size}, ${f.mtimeMs}, ${sqlString(f.outcome)}, ${sqlString(request.batchId)}, now())`)
        .join(', ')}`);
    }
    if (bad.length > 0) {
      await db.run(`INSERT INTO bronze.quarantine VALUES ${bad
        .map((f) => `(${sqlString(table)}, ${sqlString(f.path)}, ${sqlString(f.error)}, ${sqlString(request.batchId)}, now())`)
        .join(', ')}`);
    }
    return {
      tables: { [table]: { rowsInserted: rows } },
      event: { rowsIn: rows, rowsOut: rows, quarantined: bad.length },
      details: {
        filesIngested: readable.length, filesQuarantined: bad.length,
        schemaVersion: evolution.schemaVersion, newColumns: evolution.added.map(([n]) => n), ...planned,
      },
    };
  });
}

function describeCommit(table: string, commit: CommitInfo): Omit<IngestResult, 'elapsedMs'> {
  const d = commit.details as { filesIngested: number; filesQuarantined: number; schemaVersion: number; newColumns: string[] } & Partial<PlannedBatch>;
  return {
    batchId: commit.batchId, version: commit.snapshot, rows: commit.tables[table]?.rowsInserted ?? 0,
    filesIngested: d.filesIngested, filesQuarantined: d.filesQuarantined, schemaVersion: d.schemaVersion,
    newColumns: d.newColumns, alreadyCommitted: commit.alreadyCommitted, committedAt: commit.committedAt,
    cutoffMs: d.cutoffMs, waitingAfter: d.waitingAfter,
  };
}
