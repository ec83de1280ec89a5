// Bronze availableNow ingestion. One long-lived workflow per source owns that source's
// checkpoint (like a Spark stream's checkpoint folder); runs, schedules, signals and updates
// ask it for a pass. Deterministic code only.
import * as wf from '@temporalio/workflow';
import type { z } from 'zod';
import type { Activities } from '../activities';
import {
  bronzeRunInputSchema, bronzeSourceInputSchema, bronzeTable, type BronzeCheckpoint, type BronzeRunInput,
  type BronzeSourceInput, type IngestResult, type PassSummary,
} from '../rules/bronze';
import { parseOrFail } from '../rules/validate';

export interface PassRequest {
  requestId: string;
  /** Workflow to signal with passDone when the pass that serves this request ends. */
  replyTo?: string;
}

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

export const requestPassSignal = wf.defineSignal<[PassRequest]>('requestPass');
export const passDoneSignal = wf.defineSignal<[PassSummary & { requestId: string }]>('passDone');
export const runPassUpdate = wf.defineUpdate<PassSummary>('runPass');
export const bronzeStatusQuery = wf.defineQuery<BronzeSourceStatus>('checkpoint');

const retry: wf.RetryPolicy = { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', nonRetryableErrorTypes: ['InvalidInput'] };
const { planBronzeBatch, readBronzeCheckpoint, requestBronzePasses } = wf.proxyActivities<Activities>({
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
  const { ingestBronzeBatch } = wf.proxyActivities<Activities>({
    startToCloseTimeout: '1 hour',
    heartbeatTimeout: `${options.heartbeatTimeoutSeconds} seconds`,
    retry,
  });

  // A fresh workflow (no carried checkpoint) resumes from the lake's commit log, so batch
  // ids never repeat even if the workflow was terminated and started again.
  const checkpoint: BronzeCheckpoint = carried ?? (await readBronzeCheckpoint(source));
  const requests: PassRequest[] = [...(queued ?? [])];
  if (cfg.runOnStart && !carried) requests.push({ requestId: 'on-start' });
  const finished = new Map<string, PassSummary>();
  let pending: PendingBatch | undefined;
  let passRunning = false;
  let lastPass = carriedPass;
  let batchesThisRun = 0;

  wf.setHandler(requestPassSignal, (request) => void requests.push(request));
  wf.setHandler(runPassUpdate, async () => {
    const requestId = `update-${wf.uuid4()}`;
    requests.push({ requestId });
    await wf.condition(() => finished.has(requestId));
    const summary = finished.get(requestId)!;
    finished.delete(requestId);
    return summary;
  });
  wf.setHandler(bronzeStatusQuery, () => ({
    ...checkpoint, source: source.name, table, passRunning, pending, queuedRequests: requests.length, lastPass,
  }));

  /** availableNow: every file present when the pass starts, in bounded batches, then stop. */
  async function runPass(): Promise<PassSummary> {
    const startedAt = new Date(Date.now()).toISOString();
    const summary: PassSummary = {
      source: source.name, batches: 0, files: 0, rows: 0, quarantined: 0,
      fromVersion: checkpoint.version, toVersion: checkpoint.version, startedAt, finishedAt: startedAt,
    };
    let cutoffMs: number | undefined;
    for (;;) {
      const plan = await planBronzeBatch({
        source, landingPath: cfg.landingPath, cutoffMs,
        maxFiles: options.maxFilesPerBatch, maxBytes: options.maxBytesPerBatch, emptyFileGraceSeconds: options.emptyFileGraceSeconds,
      });
      cutoffMs ??= plan.listedAtMs;
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
      const result = await ingestBronzeBatch({ source, batchId: pending.batchId, batchSeq, files: plan.files });
      advance(checkpoint, result, batchSeq);
      checkpoint.lagFiles = plan.waiting - plan.files.length;
      pending = undefined;
      batchesThisRun++;
      summary.batches++;
      summary.files += result.filesIngested;
      summary.quarantined += result.filesQuarantined;
      summary.rows += result.rows;
      summary.toVersion = result.version;
    }
    checkpoint.passes++;
    summary.finishedAt = new Date(Date.now()).toISOString();
    return summary;
  }

  for (;;) {
    await wf.condition(() => requests.length > 0);
    const serving = requests.splice(0);
    passRunning = true;
    lastPass = await runPass();
    passRunning = false;
    for (const request of serving) {
      if (!request.replyTo) {
        finished.set(request.requestId, lastPass);
        continue;
      }
      try {
        await wf.getExternalWorkflowHandle(request.replyTo).signal(passDoneSignal, { ...lastPass, requestId: request.requestId });
      } catch (error) {
        wf.log.warn('requester is gone; pass result not delivered', { replyTo: request.replyTo, error: String(error) });
      }
    }
    if (requests.length === 0 && (batchesThisRun >= options.batchesPerRun || wf.workflowInfo().continueAsNewSuggested)) {
      await wf.condition(wf.allHandlersFinished);
      if (requests.length === 0) {
        await wf.continueAsNew<typeof bronzeSourceWorkflow>({ ...userInput, runOnStart: false, checkpoint, queued: requests, lastPass });
      }
    }
  }
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

/**
 * Asks each source's checkpoint workflow for a pass (starting it if needed) and waits for all.
 * Must run inside a workflow; replies arrive as passDone signals.
 */
export async function runBronzePasses(cfg: z.output<typeof bronzeRunInputSchema>, tag: string): Promise<PassSummary[]> {
  const done = (replies ??= installReplyHandler());
  const requests = cfg.sources.map((source) => ({ source, requestId: `${wf.workflowInfo().runId}:${tag}:${source.name}` }));
  await requestBronzePasses({ requests, replyTo: wf.workflowInfo().workflowId, options: cfg.options ?? {}, landingPath: cfg.landingPath });
  await wf.condition(() => requests.every((r) => done.has(r.requestId)));
  return requests.map((r) => {
    const summary = done.get(r.requestId)!;
    done.delete(r.requestId);
    return summary;
  });
}

let replies: Map<string, PassSummary> | undefined;
function installReplyHandler(): Map<string, PassSummary> {
  const done = new Map<string, PassSummary>();
  wf.setHandler(passDoneSignal, ({ requestId, ...summary }) => void done.set(requestId, summary));
  return done;
}

/** One availableNow run over the given sources (all four by default), then the workflow ends. */
export async function bronzeAvailableNow(input: BronzeRunInput = {}): Promise<PassSummary[]> {
  return runBronzePasses(parseOrFail(bronzeRunInputSchema, input, 'bronze run'), 'run');
}
