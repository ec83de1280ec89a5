// Bronze sources (configuration, not code), ingestion options and the checkpoint shape.
import { z } from 'zod';
import { DEFAULT_SCENARIOS } from './generator';

export const sourceSchema = z
  .object({
    /** Table name in schema bronze, and the workflow id suffix. */
    name: z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'must be lowercase letters, digits and _ (a table name)'),
    /** Lineage label written to every row (the source system's `source` column). */
    label: z.string().min(1),
    /** Folder, relative to the landing root or absolute (inside the landing roots either way). */
    path: z.string().min(1).refine((p) => !p.split(/[\\/]/).includes('..'), 'must not contain ".." (folders stay inside the landing root)'),
  })
  .strict();
export type Source = z.infer<typeof sourceSchema>;

/** One source per generator scenario, as the source system had bronze.celular_conectado etc. */
export const DEFAULT_SOURCES: Source[] = DEFAULT_SCENARIOS.map((s) => ({
  name: `${s.device}_${s.status}`.toLowerCase(),
  label: `${s.device} ${s.status}`,
  path: `${s.device}/${s.status}`,
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

const absolutePath = z.string()
  .refine((p) => p.startsWith('/'), 'must be an absolute path')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ".."');

export const bronzeSourceInputSchema = z
  .object({
    source: sourceSchema,
    options: ingestOptionsSchema.default(ingestOptionsSchema.parse({})),
    landingPath: absolutePath.optional(),
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
    landingPath: absolutePath.optional(),
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
