// Silver and gold checkpoint workflows: each owns its layer's checkpoint (upstream commit
// versions read so far) and serves passes like the bronze source workflows. Deterministic.
import * as wf from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { PassSummary } from '../rules/pass';
import type { GoldCheckpoint } from '../rules/gold';
import { goldInputSchema, silverInputSchema, type GoldWorkflowInput, type SilverWorkflowInput } from '../rules/layers';
import type { SilverCheckpoint, SilverInput } from '../rules/silver';
import { parseOrFail } from '../rules/validate';
import { activityRetry as retry, CheckpointOwner, planningActivities, startSummary, type PassRequest } from './checkpoint-owner';

export const silverStatusQuery = wf.defineQuery<SilverCheckpoint & { passRunning: boolean; pending?: SilverInput; lastPass?: PassSummary }>('checkpoint');
export const goldStatusQuery = wf.defineQuery<GoldCheckpoint & { passRunning: boolean; lastPass?: PassSummary }>('checkpoint');


function layerActivities(heartbeatTimeoutSeconds: number) {
  return wf.proxyActivities<Activities>({ startToCloseTimeout: '2 hours', heartbeatTimeout: `${heartbeatTimeoutSeconds} seconds`, retry });
}

const now = () => new Date(Date.now()).toISOString();

interface Carried<C> {
  checkpoint?: C;
  queued?: PassRequest[];
  lastPass?: PassSummary;
}

export async function silverWorkflow(input: SilverWorkflowInput & Carried<SilverCheckpoint> = {}): Promise<void> {
  const { checkpoint: carried, queued, lastPass: carriedPass, ...userInput } = input;
  const cfg = parseOrFail(silverInputSchema, userInput, 'silver');
  const { runSilverBatch } = layerActivities(cfg.heartbeatTimeoutSeconds);
  const { planSilverBatch, readSilverCheckpoint } = planningActivities();
  const checkpoint = carried ?? (await readSilverCheckpoint());
  let lastPass = carriedPass;
  let pending: SilverInput | undefined;
  let batchesThisRun = 0;

  const owner = new CheckpointOwner({
    queued, runOnStart: false,
    runPass: async () => {
      const summary: PassSummary = { ...startSummary('silver', 'silver', checkpoint.eventsVersion), details: { rowsIn: 0, duplicates: 0 } };
      let rowsIn = 0;
      let duplicates = 0;
      let devicesChanged = 0;
      for (;;) {
        const input = await planSilverBatch({ bronzeSnapshot: checkpoint.bronzeSnapshot, maxRows: cfg.maxRowsPerBatch });
        if (!input) break;
        const batchSeq = checkpoint.nextBatchSeq;
        pending = input; // the plan is in state before the batch runs
        const result = await runSilverBatch({ batchId: `silver:${batchSeq}`, batchSeq, input, options: cfg.options });
        checkpoint.bronzeSnapshot = input.toSnapshot;
        checkpoint.nextBatchSeq = batchSeq + 1;
        checkpoint.eventsVersion = result.snapshot;
        checkpoint.rowsIn += result.rowsIn;
        checkpoint.eventsOut += result.events;
        checkpoint.quarantined += result.quarantined;
        checkpoint.duplicates += result.duplicates;
        pending = undefined;
        batchesThisRun++;
        summary.batches++;
        summary.rows += result.events;
        summary.quarantined += result.quarantined;
        summary.toVersion = result.snapshot;
        rowsIn += result.rowsIn;
        duplicates += result.duplicates;
        devicesChanged += result.devicesChanged;
      }
      summary.details = { rowsIn, duplicates, devicesChanged };
      checkpoint.passes++;
      summary.finishedAt = now();
      return (lastPass = summary);
    },
    shouldContinueAsNew: () => batchesThisRun >= cfg.batchesPerRun,
    continueAsNew: (stillQueued) => wf.continueAsNew<typeof silverWorkflow>({ ...userInput, checkpoint, queued: stillQueued, lastPass }),
  });
  wf.setHandler(silverStatusQuery, () => ({ ...checkpoint, passRunning: owner.passRunning, pending, lastPass }));
  await owner.serve();
}

export async function goldWorkflow(input: GoldWorkflowInput & Carried<GoldCheckpoint> = {}): Promise<void> {
  const { checkpoint: carried, queued, lastPass: carriedPass, ...userInput } = input;
  const cfg = parseOrFail(goldInputSchema, userInput, 'gold');
  const { refreshGold } = layerActivities(cfg.heartbeatTimeoutSeconds);
  const { planGoldBatch, readGoldCheckpoint } = planningActivities();
  const checkpoint = carried ?? (await readGoldCheckpoint());
  let lastPass = carriedPass;
  let batchesThisRun = 0;

  const owner = new CheckpointOwner({
    queued, runOnStart: false,
    runPass: async () => {
      const summary = startSummary('gold', 'gold', checkpoint.goldSnapshot);
      const latest = await planGoldBatch();
      const asOf = cfg.asOf ? new Date(cfg.asOf).toISOString() : now();
      const silverMoved = latest.silverSnapshot > checkpoint.silverSnapshot;
      const stale = !checkpoint.lastAsOf
        || (Date.parse(asOf) - Date.parse(checkpoint.lastAsOf)) / 1000 >= cfg.options.refreshIntervalSeconds && asOf !== checkpoint.lastAsOf;
      if (silverMoved || (stale && latest.silverSnapshot > 0)) {
        const batchSeq = checkpoint.nextBatchSeq;
        const result = await refreshGold({
          batchId: `gold:${batchSeq}`, batchSeq, silverFromSnapshot: checkpoint.silverSnapshot, silverToSnapshot: latest.silverSnapshot,
          asOf, options: cfg.options,
        });
        Object.assign(checkpoint, {
          nextBatchSeq: batchSeq + 1, silverSnapshot: latest.silverSnapshot, goldSnapshot: result.snapshot,
          lastAsOf: asOf, refreshes: checkpoint.refreshes + 1,
        });
        batchesThisRun++;
        Object.assign(summary, { batches: 1, rows: result.rowsChanged, toVersion: result.snapshot });
      }
      checkpoint.passes++;
      summary.finishedAt = now();
      return (lastPass = summary);
    },
    shouldContinueAsNew: () => batchesThisRun >= cfg.batchesPerRun,
    continueAsNew: (stillQueued) => wf.continueAsNew<typeof goldWorkflow>({ ...userInput, checkpoint, queued: stillQueued, lastPass }),
  });
  wf.setHandler(goldStatusQuery, () => ({ ...checkpoint, passRunning: owner.passRunning, lastPass }));
  await owner.serve();
}
