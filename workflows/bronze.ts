// Bronze availableNow ingestion. One long-lived workflow per source owns that source's
// checkpoint (like a Spark stream's checkpoint folder); runs, schedules, signals and updates
// ask it for a pass. Deterministic code only.
import * as wf from '@temporalio/workflow';
import type { z } from 'zod';
import type { Activities } from '../activities';
import {
  bronzeRunInputSchema, bronzeSourceInputSchema, bronzeTable, bronzeWorkflowId, type BronzeCheckpoint, type BronzeRunInput,
  type BronzeSourceInput, type IngestResult, type PlanRequest, type PlanResult,
} from '../rules/bronze';
import type { PassSummary } from '../rules/pass';
import { parseOrFail } from '../rules/validate';
import {
  activityRetry as retry, awaitPasses, CheckpointOwner, LOCAL_PLANNING_PATCH, planningActivities, startSummary, type PassRequest,
} from './checkpoint-owner';

export { passDoneSignal, requestPassSignal, runPassUpdate, type PassRequest } from './checkpoint-owner';

export interface PendingBatch {
  batchId: string;
  batchSeq: number;
  files: number;
  bytes: number;
  firstFile: string;
  lastFile: string;
}

export interface BronzeSourceStatus extends BronzeCheckpoint {
  source: string;
  table: string;
  passRunning: boolean;
  pending?: PendingBatch;
  queuedRequests: number;
  lastPass?: PassSummary;
}

export const bronzeStatusQuery = wf.defineQuery<BronzeSourceStatus>('checkpoint');

const { requestPasses } = wf.proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  retry,
});

export interface BronzeSourceRunInput extends BronzeSourceInput {
  /** Carried across continueAsNew by the workflow itself. */
  checkpoint?: BronzeCheckpoint;
  queued?: PassRequest[];
  lastPass?: PassSummary;
}

export async function bronzeSourceWorkflow(input: BronzeSourceRunInput): Promise<void> {
  const { checkpoint: carried, queued, lastPass: carriedPass, ...userInput } = input;
  const cfg = parseOrFail(bronzeSourceInputSchema, userInput, 'bronze source');
  const { source, options } = cfg;
  const table = bronzeTable(source);
  const ingestOptions: wf.ActivityOptions = {
    startToCloseTimeout: '1 hour',
    heartbeatTimeout: `${options.heartbeatTimeoutSeconds} seconds`,
    retry,
  };
  const { ingestBronzeBatch } = wf.proxyActivities<Activities>(ingestOptions);
  const { planBronzeBatch, readBronzeCheckpoint } = planningActivities();

  // A fresh workflow (no carried checkpoint) resumes from the lake's commit log, so batch
  // ids never repeat even if the workflow was terminated and started again.
  const checkpoint: BronzeCheckpoint = carried ?? (await readBronzeCheckpoint(source));
  let pending: PendingBatch | undefined;
  let lastPass = carriedPass;
  let batchesThisRun = 0;
  const owner = new CheckpointOwner({
    queued,
    runOnStart: cfg.runOnStart && !carried,
    runPass: async () => (lastPass = await runPass()),
    shouldContinueAsNew: () => batchesThisRun >= options.batchesPerRun,
    continueAsNew: (stillQueued) =>
      wf.continueAsNew<typeof bronzeSourceWorkflow>({ ...userInput, runOnStart: false, checkpoint, queued: stillQueued, lastPass }),
  });
  wf.setHandler(bronzeStatusQuery, () => ({
    ...checkpoint, source: source.name, table, passRunning: owner.passRunning, pending, queuedRequests: owner.requests.length, lastPass,
  }));

  /** availableNow: every file present when the pass starts, in bounded batches, then stop. */
  async function runPass(): Promise<PassSummary> {
    const summary = startSummary('bronze', source.name, checkpoint.version);
    let activityMs = 0;
    const planRequest = (cutoffMs?: number): PlanRequest => ({
      source, landingPath: cfg.landingPath, cutoffMs,
      maxFiles: options.maxFilesPerBatch, maxBytes: options.maxBytesPerBatch, maxRows: options.maxRowsPerBatch,
      emptyFileGraceSeconds: options.emptyFileGraceSeconds,
    });
    const planHere = async (cutoffMs?: number): Promise<PlanResult> => {
      const planned = await planBronzeBatch(planRequest(cutoffMs));
      activityMs += planned.elapsedMs ?? 0;
      return planned;
    };
    let plan = await planHere();
    const cutoffMs = plan.listedAtMs;
    for (;;) {
      checkpoint.lagFiles = plan.waiting;
      checkpoint.lagMeasuredAt = new Date(Date.now()).toISOString();
      if (plan.files.length === 0) break;

      // 1. record the plan (offsets/), 2. run the batch, 3. record the commit (commits/).
      const batchSeq = checkpoint.nextBatchSeq;
      pending = {
        batchId: `${table}:${batchSeq}`, batchSeq, files: plan.files.length,
        bytes: plan.files.reduce((sum, f) => sum + f.size, 0),
        firstFile: plan.files[0].path, lastFile: plan.files[plan.files.length - 1].path,
      };
      const drained = plan.files.length >= plan.waiting;
      // More files wait: the batch's activity plans the next batch after its commit, saving a
      // planning round trip per batch; that plan is in history before its batch runs, as before.
      // No patch needed: a result recorded without `next` replays into a local plan, as it ran.
      const result = await ingestBronzeBatch.executeWithOptions(
        { ...ingestOptions, summary: `${pending.batchId}: ${pending.files} files, ${(pending.bytes / 1e6).toFixed(1)} MB` },
        [{ source, batchId: pending.batchId, batchSeq, files: plan.files, ...(!drained && { next: planRequest(cutoffMs) }) }],
      );
      advance(checkpoint, result, batchSeq);
      activityMs += result.elapsedMs ?? 0;
      checkpoint.lagFiles = plan.waiting - plan.files.length;
      pending = undefined;
      batchesThisRun++;
      summary.batches++;
      summary.files += result.filesIngested;
      summary.quarantined += result.filesQuarantined;
      summary.rows += result.rows;
      summary.toVersion = result.version;
      // This batch took every file waiting at the cutoff: the pass is done without a re-plan.
      if (drained && wf.patched(LOCAL_PLANNING_PATCH)) break;
      plan = result.next ?? (await planHere(cutoffMs));
    }
    checkpoint.passes++;
    summary.lag = checkpoint.lagFiles;
    summary.activityMs = activityMs;
    summary.finishedAt = new Date(Date.now()).toISOString();
    return summary;
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
  checkpoint.lastCommit = result;
}

/** Asks each source's checkpoint workflow for a pass (starting it if needed) and waits for all. */
export async function runBronzePasses(cfg: z.output<typeof bronzeRunInputSchema>, tag: string): Promise<PassSummary[]> {
  const byName = new Map(cfg.sources.map((source) => [source.name, source]));
  return awaitPasses(
    (requests, replyTo) => requestPasses({
      replyTo,
      targets: requests.map(({ requestId, key }) => ({
        requestId, workflowId: bronzeWorkflowId(byName.get(key)!), workflowType: 'bronzeSourceWorkflow',
        layer: 'bronze' as const, source: bronzeTable(byName.get(key)!),
        input: { source: byName.get(key)!, options: cfg.options ?? {}, landingPath: cfg.landingPath },
      })),
    }),
    [...byName.keys()],
    tag,
  );
}

/** One availableNow run over the given sources (all four by default), then the workflow ends. */
export async function bronzeAvailableNow(input: BronzeRunInput = {}): Promise<PassSummary[]> {
  return runBronzePasses(parseOrFail(bronzeRunInputSchema, input, 'bronze run'), 'run');
}
