// Bronze sources (configuration, not code), ingestion options and the checkpoint shape.
import { z } from 'zod';
import { LANDING_COLUMNS } from './events';
import { landingLocationSchema } from './landing';
import { DEFAULT_SCENARIOS } from './generator';

/**
 * DuckDB types a schema hint may declare: a closed list, since the type is written into the
 * table's DDL.
 */
const HINT_TYPES = /^(VARCHAR|BOOLEAN|TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|FLOAT|DOUBLE|DATE|TIME|TIMESTAMP|TIMESTAMPTZ|UUID|DECIMAL\(\d{1,2},\d{1,2}\))$/;

/** Lineage columns on every bronze row (names as in the source system, plus batch and rescue). */
export const LINEAGE_COLUMNS: readonly (readonly [name: string, type: string])[] = [
  ['rastreamento_source', 'VARCHAR'],
  ['source', 'VARCHAR'],
  ['data_arquivo_ingestao', 'TIMESTAMP'],
  ['status', 'BOOLEAN'],
  ['_rescued_data', 'JSON'],
  ['_batch_id', 'VARCHAR'],
  /** The row's position in its landing file, from 0 (Databricks' _metadata.row_index): with the file, a total order of rows. */
  ['_row_index', 'BIGINT'],
];
export const isLineageColumn = (name: string) => LINEAGE_COLUMNS.some(([n]) => n === name.toLowerCase());

/**
 * Declared column types of a source, like Auto Loader's cloudFiles.schemaHints: a table that a
 * source creates takes these types for these columns whatever its first files hold, and a value
 * that does not fit goes to _rescued_data, never its neighbours. Columns not hinted take the type
 * most of the sampled files agree on.
 */
export const schemaHintsSchema = z.record(
  z.string().min(1).max(255).regex(/^[^\x00-\x1f"]+$/, 'a column name without control characters or double quotes')
    .refine((name) => !isLineageColumn(name), 'a lineage column\'s name: bronze writes that column itself'),
  z.string().transform((t) => t.replace(/\s+/g, '').toUpperCase()).refine((t) => HINT_TYPES.test(t), 'a DuckDB type: VARCHAR, BOOLEAN, an integer, FLOAT, DOUBLE, DECIMAL(p, s), DATE, TIME, TIMESTAMP, TIMESTAMPTZ or UUID'),
);
export type SchemaHints = z.output<typeof schemaHintsSchema>;

/** The source system's record (the generator's columns, Servidor in population mode): every source's hints unless it declares its own. */
export const SOURCE_SYSTEM_TYPES: SchemaHints = Object.fromEntries([...LANDING_COLUMNS, ['Servidor', 'VARCHAR']]);

export const sourceSchema = z
  .object({
    /** Table name in schema bronze, and the workflow id suffix. */
    name: z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'must be lowercase letters, digits and _ (a table name)'),
    /** Lineage label written to every row (the source system's `source` column). */
    label: z.string().min(1),
    /** Folder, relative to the landing root or absolute (inside the landing roots either way). */
    path: z.string().min(1).refine((p) => !p.split(/[\\/]/).includes('..'), 'must not contain ".." (folders stay inside the landing root)'),
    /** Declared column types ({} for none: inference alone); the source system's by default. */
    schemaHints: schemaHintsSchema.default(SOURCE_SYSTEM_TYPES),
  })
  .strict();
/** A source as configured (schemaHints may be left out: the source system's types then). */
export type Source = z.input<typeof sourceSchema>;

/** The column types a source declares (its schemaHints, else the source system's). */
export function declaredTypes(source: Source): SchemaHints {
  return source.schemaHints ?? SOURCE_SYSTEM_TYPES;
}

/** One source per generator scenario, as the source system had bronze.celular_conectado etc. */
export const DEFAULT_SOURCES: z.output<typeof sourceSchema>[] = DEFAULT_SCENARIOS.map((s) => ({
  name: `${s.device}_${s.status}`.toLowerCase(),
  label: `${s.device} ${s.status}`,
  path: `${s.device}/${s.status}`,
  schemaHints: SOURCE_SYSTEM_TYPES,
}));

export const ingestOptionsSchema = z
  .object({
    maxFilesPerBatch: z.number().int().min(1).max(100_000).default(1000),
    maxBytesPerBatch: z.number().int().min(1).default(256 * 1024 * 1024),
    /** Rows per batch, from the parquet footers (whole files; at least one file). */
    maxRowsPerBatch: z.number().int().min(1).default(250_000),
    /** A dead worker's batch is retried elsewhere after this long without a heartbeat. */
    heartbeatTimeoutSeconds: z.number().min(1).max(600).default(30),
    /** A zero-byte or footer-less file younger than this may still be being written (retried); older, it is quarantined. */
    emptyFileGraceSeconds: z.number().min(0).default(30),
    /** Batches per workflow run before continueAsNew keeps history small (inside a pass too). */
    batchesPerRun: z.number().int().min(1).max(5000).default(200),
    /** Attempts of a failing activity (backing off 1 s … 1 min) before its batch is parked. */
    maxAttempts: z.number().int().min(1).max(1000).default(10),
  })
  .strict();
export type IngestOptions = z.output<typeof ingestOptionsSchema>;

export const bronzeSourceInputSchema = z
  .object({
    source: sourceSchema,
    options: ingestOptionsSchema.default(ingestOptionsSchema.parse({})),
    landingPath: landingLocationSchema.optional(),
    /** Run one availableNow pass as soon as the workflow starts. */
    runOnStart: z.boolean().default(false),
  })
  .strict();
export type BronzeSourceInput = z.input<typeof bronzeSourceInputSchema>;

export const bronzeRunInputSchema = z
  .object({
    sources: z
      .array(sourceSchema)
      .min(1)
      .refine((l) => new Set(l.map((s) => s.name)).size === l.length, 'source names must be unique')
      .default(DEFAULT_SOURCES),
    options: ingestOptionsSchema.partial().optional(),
    landingPath: landingLocationSchema.optional(),
    /** Prefix of every owner's workflow id (several lakes on one namespace, tests). */
    workflowIdPrefix: z.string().regex(/^[a-z0-9-]*$/, 'lowercase letters, digits and -').default(''),
    /** How long a requester waits for an owner's pass before it reports "no answer" and goes on. */
    passTimeoutSeconds: z.number().int().min(1).max(7 * 86_400).default(3600),
  })
  .strict();
export type BronzeRunInput = z.input<typeof bronzeRunInputSchema>;

/** What a bronze owner runs with, compared with each request's (runOnStart is not part of it). */
export function bronzeOwnerConfig({ source, options, landingPath }: { source: Source; options: IngestOptions; landingPath?: string }) {
  return { source, options, landingPath };
}

export function bronzeTable(source: Pick<Source, 'name'>): string {
  return `bronze.${source.name}`;
}

export function bronzeWorkflowId(source: Pick<Source, 'name'>, workflowIdPrefix = ''): string {
  return `${workflowIdPrefix}bronze-${source.name.replace(/_/g, '-')}`;
}

export interface LandingFileInfo {
  path: string;
  size: number;
  mtimeMs: number;
}

export interface PlanRequest {
  source: Source;
  landingPath?: string;
  /** Files modified after this instant belong to the next pass (availableNow). */
  cutoffMs?: number;
  maxFiles: number;
  maxBytes: number;
  maxRows: number;
  emptyFileGraceSeconds: number;
}

export interface PlanResult {
  files: LandingFileInfo[];
  /** Files not yet ingested, including this batch's (up to the cutoff). */
  waiting: number;
  listedAtMs: number;
  /** Time the activity took, for the pass's overhead figures. */
  elapsedMs: number;
  /** Set when the landing folder itself is missing (not listed as empty). */
  landingMissing?: string;
}

export interface IngestRequest {
  source: Source;
  batchId: string;
  batchSeq: number;
  /** The batch plans itself (file lists stay out of workflow history); a retry re-plans unless committed. */
  plan?: PlanRequest;
  /** Histories from before in-batch planning: the planned files. */
  files?: LandingFileInfo[];
  /** Histories from before in-batch planning: plan the next batch once this one is committed. */
  next?: PlanRequest;
  /** The attempt, from the second on (the owner workflow retries the batch itself). */
  attempt?: number;
}

export interface IngestResult {
  batchId: string;
  version: number;
  rows: number;
  filesIngested: number;
  filesQuarantined: number;
  schemaVersion: number;
  newColumns: string[];
  alreadyCommitted: boolean;
  committedAt: string;
  /** Includes planning. */
  elapsedMs: number;
  next?: PlanResult;
  /** In-batch planning: the availableNow cutoff it used (the pass keeps it) and files left after the batch. */
  cutoffMs?: number;
  waitingAfter?: number;
  landingMissing?: string;
}

/** Compact, carried through continueAsNew: counters and high-water marks, no file lists. */
export interface BronzeCheckpoint {
  nextBatchSeq: number;
  version: number;
  filesIngested: number;
  filesQuarantined: number;
  rowsIngested: number;
  schemaVersion: number;
  lastCommit?: IngestResult;
  lagFiles?: number;
  lagMeasuredAt?: string;
  passes: number;
}
