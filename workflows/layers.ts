// Silver and gold checkpoint workflows: each owns its layer's checkpoint (upstream commit
// versions read so far) and serves passes like the bronze source workflows. Deterministic.
import * as wf from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { GoldCheckpoint } from '../rules/gold';
import { goldInputSchema, silverInputSchema, type GoldWorkflowInput, type SilverWorkflowInput } from '../rules/layers';
import { requeueFilterSchema, type RequeueFilter, type SilverCheckpoint, type SilverInput } from '../rules/silver';
import { parseOrFail } from '../rules/validate';
import { SINGLE_SHARD, silverBatchQueue, silverShardOwner } from '../rules/shards';
import { ownerConfigKey, type PassSummary } from '../rules/pass';
import { activityRetry, CheckpointOwner, planningActivities, type OwnerCarry, type Parked, type Retrying } from './checkpoint-owner';
import { startSummary } from './requests';

interface OwnerStatus { passRunning: boolean; lastPass?: PassSummary; parked?: Parked; retrying?: Retrying }
export const silverStatusQuery = wf.defineQuery<SilverCheckpoint & OwnerStatus & { pending?: SilverInput }>('checkpoint');
/** Puts quarantined rows back through silver's rules in its next batch; answers with that pass's summary. */
export const requeueQuarantineUpdate = wf.defineUpdate<PassSummary, [RequeueFilter]>('requeueQuarantine');
export const goldStatusQuery = wf.defineQuery<GoldCheckpoint & OwnerStatus>('checkpoint');


function layerActivities(heartbeatTimeoutSeconds: number, maxAttempts: number, taskQueue?: string) {
  return wf.proxyActivities<Activities>({
    startToCloseTimeout: '2 hours', heartbeatTimeout: `${heartbeatTimeoutSeconds} seconds`, retry: activityRetry(maxAttempts), ...(taskQueue && { taskQueue }),
  });
}

/** Shard owners started before the silver batch queue run their batches on the main queue. */
const SILVER_BATCH_QUEUE_PATCH = 'silver-batch-queue';

const now = () => new Date(Date.now()).toISOString();

/** Silver passes started before this plan once more after a batch that took everything waiting. */
const SILVER_DRAINED_PATCH = 'silver-pass-ends-when-drained';

interface Carried<C, P> extends OwnerCarry<P> {
  checkpoint?: C;
}

/** Silver's counts so far in a pass that continued as new. */
type SilverPassProgress = Record<'rowsIn' | 'duplicates' | 'devicesChanged', number> & { requeued?: number };

export async function silverWorkflow(input: SilverWorkflowInput & Carried<SilverCheckpoint, SilverPassProgress> = {}): Promise<void> {
  const { checkpoint: carried, queued, parked, inPass, lastPass, ...userInput } = input;
  const cfg = parseOrFail(silverInputSchema, userInput, 'silver');
  const { logParked } = layerActivities(cfg.heartbeatTimeoutSeconds, cfg.maxAttempts);
  const { planSilverBatch, readSilverCheckpoint } = planningActivities(cfg.maxAttempts);
  const shard = cfg.shard ?? SINGLE_SHARD;
  const owned = shard.count === 1 ? [] : [shard]; // one-shard owners call their activities as before shards
  // Shards' batches go to the silver batch queue, one batch per worker at a time (rules/shards.ts).
  const { runSilverBatch } = shard.count > 1 && wf.patched(SILVER_BATCH_QUEUE_PATCH)
    ? layerActivities(cfg.heartbeatTimeoutSeconds, cfg.maxAttempts, silverBatchQueue(wf.workflowInfo().taskQueue))
    : layerActivities(cfg.heartbeatTimeoutSeconds, cfg.maxAttempts);
  const checkpoint = carried ?? (await readSilverCheckpoint(...owned));
  let pending: SilverInput | undefined;
  let batchesThisRun = 0;

  const owner: CheckpointOwner<SilverPassProgress> = new CheckpointOwner({
    queued, parked, inPass, lastPass, runOnStart: false, configKey: ownerConfigKey(cfg), maxAttempts: cfg.maxAttempts,
    canonicalConfig: (requested) => ownerConfigKey(parseOrFail(silverInputSchema, requested, 'requested silver')),
    newSummary: () => startSummary('silver', silverShardOwner(shard), checkpoint.eventsVersion),
    runPass: async (summary, resumed) => {
      const progress = resumed ?? { rowsIn: 0, duplicates: 0, devicesChanged: 0 };
      for (;;) {
        summary.details = { ...progress };
        const requeue = checkpoint.requeue ?? [];
        const planned = await owner.run({ step: 'planSilverBatch' }, (_attempt, retry) => planSilverBatch.executeWithOptions(retry,
          // A shard keeps about 1/N of the bronze rows it reads: its batches span N times the rows, so
          // each still writes ~maxRowsPerBatch rows and the per-batch costs are not paid N times over.
          [{ bronzeSnapshot: checkpoint.bronzeSnapshot, maxRows: cfg.maxRowsPerBatch * shard.count }]));
        // Requeued quarantine rows go with the next batch; with no bronze commits waiting, in one of their own.
        const input: SilverInput | undefined = requeue.length === 0 ? planned : {
          ...(planned ?? { fromSnapshot: checkpoint.bronzeSnapshot, toSnapshot: checkpoint.bronzeSnapshot, tables: [], rows: 0, drained: true }), requeue,
        };
        if (!input) break;
        const batchSeq = checkpoint.nextBatchSeq;
        pending = input; // the plan is in state before the batch runs
        const batchId = `${silverShardOwner(shard)}:${batchSeq}`;
        owner.currentBatch = batchId;
        const result = await owner.run({ step: 'runSilverBatch', batchId }, (_attempt, retry) => runSilverBatch.executeWithOptions(retry,
          [{ batchId, batchSeq, input, options: cfg.options, ...(owned.length ? { shard } : {}) }]));
        checkpoint.bronzeSnapshot = input.toSnapshot;
        checkpoint.nextBatchSeq = batchSeq + 1;
        checkpoint.eventsVersion = result.snapshot;
        checkpoint.rowsIn += result.rowsIn;
        checkpoint.eventsOut += result.events;
        checkpoint.quarantined += result.quarantined - (result.requeued ?? 0);
        checkpoint.duplicates += result.duplicates;
        if (requeue.length > 0) checkpoint.requeue = checkpoint.requeue!.slice(requeue.length);
        pending = undefined;
        batchesThisRun++;
        summary.batches++;
        summary.rows += result.events;
        summary.quarantined += result.quarantined;
        summary.toVersion = result.snapshot;
        progress.rowsIn += result.rowsIn;
        progress.duplicates += result.duplicates;
        progress.devicesChanged += result.devicesChanged;
        if (result.requeued) progress.requeued = (progress.requeued ?? 0) + result.requeued;
        summary.details = { ...progress };
        // availableNow: what was waiting when the pass planned is in; later commits go to the next pass.
        if (input.drained && wf.patched(SILVER_DRAINED_PATCH)) break;
        await owner.betweenBatches(summary, progress);
      }
      checkpoint.passes++;
    },
    shouldContinueAsNew: () => batchesThisRun >= cfg.batchesPerRun,
    continueAsNew: (carry) => wf.continueAsNew<typeof silverWorkflow>({ ...userInput, checkpoint, ...carry }),
    logParked: (p) => logParked({ layer: 'silver', source: silverShardOwner(shard), parked: p }),
  });
  wf.setHandler(silverStatusQuery, () => ({
    ...checkpoint, passRunning: owner.passRunning, pending, lastPass: owner.lastPass, parked: owner.parked, retrying: owner.retrying,
  }));
  wf.setHandler(requeueQuarantineUpdate, (filter) => {
    checkpoint.requeue = [...(checkpoint.requeue ?? []), requeueFilterSchema.parse(filter)];
    return owner.passAndWait();
  }, { validator: (filter) => void parseOrFail(requeueFilterSchema, filter, 'requeue') });
  await owner.serve();
}

export async function goldWorkflow(input: GoldWorkflowInput & Carried<GoldCheckpoint, never> = {}): Promise<void> {
  const { checkpoint: carried, queued, parked, lastPass, ...userInput } = input;
  const cfg = parseOrFail(goldInputSchema, userInput, 'gold');
  const { refreshGold, logParked } = layerActivities(cfg.heartbeatTimeoutSeconds, cfg.maxAttempts);
  const { planGoldBatch, readGoldCheckpoint } = planningActivities(cfg.maxAttempts);
  const checkpoint = carried ?? (await readGoldCheckpoint());
  let batchesThisRun = 0;

  const owner: CheckpointOwner<never> = new CheckpointOwner({
    queued, parked, lastPass, runOnStart: false, configKey: ownerConfigKey(cfg), maxAttempts: cfg.maxAttempts,
    canonicalConfig: (requested) => ownerConfigKey(parseOrFail(goldInputSchema, requested, 'requested gold')),
    newSummary: () => startSummary('gold', 'gold', checkpoint.goldSnapshot),
    runPass: async (summary) => {
      const latest = await owner.run({ step: 'planGoldBatch' }, (_attempt, retry) => planGoldBatch.executeWithOptions(retry, []));
      const asOf = cfg.asOf ? new Date(cfg.asOf).toISOString() : now();
      const silverMoved = latest.silverSnapshot > checkpoint.silverSnapshot;
      const stale = !checkpoint.lastAsOf
        || (Date.parse(asOf) - Date.parse(checkpoint.lastAsOf)) / 1000 >= cfg.options.refreshIntervalSeconds && asOf !== checkpoint.lastAsOf;
      if (silverMoved || (stale && latest.silverSnapshot > 0)) {
        const batchSeq = checkpoint.nextBatchSeq;
        const batchId = `gold:${batchSeq}`;
        owner.currentBatch = batchId;
        const result = await owner.run({ step: 'refreshGold', batchId }, (_attempt, retry) => refreshGold.executeWithOptions(retry, [{
          batchId, batchSeq, silverFromSnapshot: checkpoint.silverSnapshot, silverToSnapshot: latest.silverSnapshot, asOf, options: cfg.options,
        }]));
        Object.assign(checkpoint, {
          nextBatchSeq: batchSeq + 1, silverSnapshot: latest.silverSnapshot, goldSnapshot: result.snapshot,
          lastAsOf: asOf, refreshes: checkpoint.refreshes + 1,
        });
        batchesThisRun++;
        Object.assign(summary, { batches: 1, rows: result.rowsChanged, toVersion: result.snapshot });
      }
      checkpoint.passes++;
    },
    shouldContinueAsNew: () => batchesThisRun >= cfg.batchesPerRun,
    continueAsNew: (carry) => wf.continueAsNew<typeof goldWorkflow>({ ...userInput, checkpoint, ...carry }),
    logParked: (p) => logParked({ layer: 'gold', source: 'gold', parked: p }),
  });
  wf.setHandler(goldStatusQuery, () => ({ ...checkpoint, passRunning: owner.passRunning, lastPass: owner.lastPass, parked: owner.parked, retrying: owner.retrying }));
  await owner.serve();
}
