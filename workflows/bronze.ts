// Bronze availableNow ingestion. One long-lived workflow per source owns that source's
// checkpoint (like a Spark stream's checkpoint folder); runs, schedules, signals and updates
// ask it for a pass. Deterministic code only.
import { ApplicationFailure } from '@temporalio/common';
import * as wf from '@temporalio/workflow';
import type { z } from 'zod';
import type { Activities } from '../activities';
import {
  bronzeOwnerConfig, bronzeRunInputSchema, bronzeSourceInputSchema, bronzeTable, bronzeWorkflowId, ingestOptionsSchema, type BronzeCheckpoint,
  type BronzeRunInput, type BronzeSourceInput, type IngestOptions, type IngestResult, type PlanRequest, type PlanResult,
} from '../rules/bronze';
import { ownerConfigKey, type PassSummary } from '../rules/pass';
import { parseOrFail } from '../rules/validate';
import {
  activityRetry, CheckpointOwner, LOCAL_PLANNING_PATCH, planningActivities, type OwnerCarry, type Parked, type Retrying,
} from './checkpoint-owner';
import { askOwners, awaitPasses, startSummary } from './requests';

export { retryParkedSignal } from './checkpoint-owner';
export { passDoneSignal, requestPassSignal, runPassUpdate } from './requests';

export interface PendingBatch {
  batchId: string;
  batchSeq: number;
  since: string;
}

export interface BronzeSourceStatus extends BronzeCheckpoint {
  source: string;
  table: string;
  passRunning: boolean;
  pending?: PendingBatch;
  queuedRequests: number;
  lastPass?: PassSummary;
  parked?: Parked;
  retrying?: Retrying;
  /** The options and landing zone the owner runs with (a request with others is refused). */
  landingPath?: string;
  options: IngestOptions;
}

export const bronzeStatusQuery = wf.defineQuery<BronzeSourceStatus>('checkpoint');

/** Passes started after this plan each batch inside its activity: no file list in history. */
export const PLAN_IN_BATCH_PATCH = 'plan-inside-batch';

/** Where a pass cut by continue-as-new stands. */
interface BronzePassProgress {
  cutoffMs?: number;
  activityMs: number;
}

export interface BronzeSourceRunInput extends BronzeSourceInput, OwnerCarry<BronzePassProgress> {
  /** Carried across continueAsNew by the workflow itself. */
  checkpoint?: BronzeCheckpoint;
}

export async function bronzeSourceWorkflow(input: BronzeSourceRunInput): Promise<void> {
  const { checkpoint: carried, queued, parked, inPass, lastPass, ...userInput } = input;
  const cfg = parseOrFail(bronzeSourceInputSchema, userInput, 'bronze source');
  const { source, options } = cfg;
  const table = bronzeTable(source);
  const retry = activityRetry(options.maxAttempts);
  const ingestOptions: wf.ActivityOptions = {
    startToCloseTimeout: '1 hour',
    heartbeatTimeout: `${options.heartbeatTimeoutSeconds} seconds`,
    retry,
  };
  const { ingestBronzeBatch, logParked } = wf.proxyActivities<Activities>(ingestOptions);
  const { planBronzeBatch, readBronzeCheckpoint } = planningActivities(options.maxAttempts);

  // A fresh workflow (no carried checkpoint) resumes from the lake's commit log, so batch
  // ids never repeat even if the workflow was terminated and started again.
  const checkpoint: BronzeCheckpoint = carried ?? (await readBronzeCheckpoint(source));
  let pending: PendingBatch | undefined;
  let batchesThisRun = 0;
  const owner: CheckpointOwner<BronzePassProgress> = new CheckpointOwner({
    queued, parked, inPass, lastPass, maxAttempts: options.maxAttempts,
    runOnStart: cfg.runOnStart && !carried,
    configKey: ownerConfigKey(bronzeOwnerConfig(cfg)),
    // (requests from before v68ba2ac wrote a missing landing path as null)
    canonicalConfig: (requested) => ownerConfigKey(bronzeOwnerConfig(parseOrFail(bronzeSourceInputSchema,
      { ...(requested as object), landingPath: (requested as { landingPath?: string | null }).landingPath ?? undefined }, 'requested bronze'))),
    newSummary: () => startSummary('bronze', source.name, checkpoint.version),
    runPass: async (summary, progress) => {
      if (progress || wf.patched(PLAN_IN_BATCH_PATCH)) await runPass(summary, progress ?? { activityMs: 0 });
      else await runPassWithPlans(summary);
      checkpoint.passes++;
      summary.lag = checkpoint.lagFiles;
    },
    shouldContinueAsNew: () => batchesThisRun >= options.batchesPerRun,
    continueAsNew: (carry) =>
      wf.continueAsNew<typeof bronzeSourceWorkflow>({ ...userInput, runOnStart: false, checkpoint, ...carry }),
    logParked: (p) => logParked({ layer: 'bronze', source: table, parked: p }),
  });
  wf.setHandler(bronzeStatusQuery, () => ({
    ...checkpoint, source: source.name, table, passRunning: owner.passRunning, pending, queuedRequests: owner.requests.length, lastPass: owner.lastPass,
    parked: owner.parked, retrying: owner.retrying, landingPath: cfg.landingPath, options,
  }));

  const planRequest = (cutoffMs?: number): PlanRequest => ({
    source, landingPath: cfg.landingPath, cutoffMs,
    maxFiles: options.maxFilesPerBatch, maxBytes: options.maxBytesPerBatch, maxRows: options.maxRowsPerBatch,
    emptyFileGraceSeconds: options.emptyFileGraceSeconds,
  });

  function batchDone(summary: PassSummary, result: IngestResult, batchSeq: number): void {
    advance(checkpoint, result, batchSeq);
    pending = undefined;
    batchesThisRun++;
    summary.batches++;
    summary.files += result.filesIngested;
    summary.quarantined += result.filesQuarantined;
    summary.rows += result.rows;
    summary.toVersion = result.version;
  }

  /**
   * availableNow: every file present when the pass starts, in bounded batches, then stop. Each
   * batch plans itself against the pass's cutoff, so no file list enters history; a retried
   * batch plans again unless its fence shows it committed. Continues as new between batches.
   */
  async function runPass(summary: PassSummary, progress: BronzePassProgress): Promise<void> {
    for (;;) {
      const batchSeq = checkpoint.nextBatchSeq;
      pending = { batchId: `${table}:${batchSeq}`, batchSeq, since: new Date(Date.now()).toISOString() };
      const batchId = pending.batchId;
      owner.currentBatch = batchId;
      const result = await owner.run({ step: 'ingestBronzeBatch', batchId }, (attempt, retry) => ingestBronzeBatch.executeWithOptions(
        { ...ingestOptions, ...retry, summary: `${batchId}: up to ${options.maxFilesPerBatch} files` },
        [{ source, batchId, batchSeq, plan: planRequest(progress.cutoffMs), ...(attempt > 1 && { attempt }) }],
      ));
      pending = undefined;
      progress.cutoffMs ??= result.cutoffMs;
      progress.activityMs += result.elapsedMs ?? 0;
      summary.activityMs = progress.activityMs;
      checkpoint.lagFiles = result.waitingAfter ?? 0;
      checkpoint.lagMeasuredAt = new Date(Date.now()).toISOString();
      if (result.landingMissing) summary.landingMissing = result.landingMissing;
      if (result.filesIngested + result.filesQuarantined === 0) break; // nothing was waiting: no commit
      batchDone(summary, result, batchSeq);
      if (checkpoint.lagFiles === 0) break;
      await owner.betweenBatches(summary, progress);
    }
  }

  /** Passes as they ran before PLAN_IN_BATCH_PATCH: planned by the workflow, file lists in history. */
  async function runPassWithPlans(summary: PassSummary): Promise<void> {
    let activityMs = 0;
    const planHere = async (cutoffMs?: number): Promise<PlanResult> => {
      const planned = await owner.run({ step: 'planBronzeBatch' }, (_attempt, retry) => planBronzeBatch.executeWithOptions(retry, [planRequest(cutoffMs)]));
      activityMs += planned.elapsedMs ?? 0;
      return planned;
    };
    let plan = await planHere();
    const cutoffMs = plan.listedAtMs;
    if (plan.landingMissing) summary.landingMissing = plan.landingMissing;
    for (;;) {
      checkpoint.lagFiles = plan.waiting;
      checkpoint.lagMeasuredAt = new Date(Date.now()).toISOString();
      if (plan.files.length === 0) break;
      const batchSeq = checkpoint.nextBatchSeq;
      pending = { batchId: `${table}:${batchSeq}`, batchSeq, since: new Date(Date.now()).toISOString() };
      const drained = plan.files.length >= plan.waiting;
      const { batchId } = pending;
      const files = plan.files;
      const result = await owner.run({ step: 'ingestBronzeBatch', batchId }, (attempt, retry) => ingestBronzeBatch.executeWithOptions(
        { ...ingestOptions, ...retry, summary: `${batchId}: ${files.length} files, ${(files.reduce((sum, f) => sum + f.size, 0) / 1e6).toFixed(1)} MB` },
        [{ source, batchId, batchSeq, files, ...(!drained && { next: planRequest(cutoffMs) }), ...(attempt > 1 && { attempt }) }],
      ));
      batchDone(summary, result, batchSeq);
      activityMs += result.elapsedMs ?? 0;
      checkpoint.lagFiles = plan.waiting - plan.files.length;
      if (drained && wf.patched(LOCAL_PLANNING_PATCH)) break;
      plan = result.next ?? (await planHere(cutoffMs));
    }
    summary.activityMs = activityMs;
  }

  await owner.serve();
}

function advance(checkpoint: BronzeCheckpoint, result: IngestResult, batchSeq: number): void {
  checkpoint.nextBatchSeq = batchSeq + 1;
  checkpoint.version = result.version;
  checkpoint.filesIngested += result.filesIngested;
  checkpoint.filesQuarantined += result.filesQuarantined;
  checkpoint.rowsIngested += result.rows;
  checkpoint.schemaVersion = Math.max(checkpoint.schemaVersion, result.schemaVersion);
  const { next: _next, ...lastCommit } = result; // a plan's file list stays out of the carried checkpoint
  checkpoint.lastCommit = lastCommit;
}

/** Asks each source's checkpoint workflow for a pass (starting it if needed) and waits for all. */
export async function runBronzePasses(cfg: z.output<typeof bronzeRunInputSchema>, tag: string, folders?: string[]): Promise<PassSummary[]> {
  // Only the sources whose folder is, or holds, one of `folders` (when given).
  const chosen = folders ? cfg.sources.filter((s) => folders.some((f) => f === s.path || f.startsWith(`${s.path}/`))) : cfg.sources;
  if (chosen.length === 0) return [];
  const byName = new Map(chosen.map((source) => [source.name, source]));
  return awaitPasses(
    (requests, replyTo) => askOwners({
      replyTo,
      targets: requests.map(({ requestId, key }) => {
        const input = { source: byName.get(key)!, options: ingestOptionsSchema.parse(cfg.options ?? {}), landingPath: cfg.landingPath };
        return {
          requestId, workflowId: bronzeWorkflowId(input.source, cfg.workflowIdPrefix), workflowType: 'bronzeSourceWorkflow',
          layer: 'bronze' as const, source: bronzeTable(input.source), input, config: ownerConfigKey(bronzeOwnerConfig(input)),
        };
      }),
    }),
    [...byName.keys()],
    { tag, timeoutSeconds: cfg.passTimeoutSeconds, noAnswer: (key) => startSummary('bronze', key, 0) },
  );
}

/** A one-shot run fails when a landing folder is missing; a continuous pipeline shows it and goes on. */
export function failOnMissingLanding(summaries: PassSummary[]): void {
  const missing = summaries.find((s) => s.landingMissing);
  if (missing) throw ApplicationFailure.nonRetryable(`${missing.source}: ${missing.landingMissing}`, 'LandingMissing');
}

/** One availableNow run over the given sources (all four by default), then the workflow ends. */
export async function bronzeAvailableNow(input: BronzeRunInput = {}): Promise<PassSummary[]> {
  const summaries = await runBronzePasses(parseOrFail(bronzeRunInputSchema, input, 'bronze run'), 'run');
  failOnMissingLanding(summaries);
  return summaries;
}
