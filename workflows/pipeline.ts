// The medallion pipeline: one availableNow pass over every layer, once or continuously.
// Bronze sources run in parallel (each in its own checkpoint workflow); later layers follow.
import * as wf from '@temporalio/workflow';
import type { PassSummary } from '../rules/bronze';
import { pipelineInputSchema, type PipelineInput } from '../rules/pipeline';
import { parseOrFail } from '../rules/validate';
import type { Activities } from '../activities';
import { GOLD_WORKFLOW_ID, SILVER_WORKFLOW_ID } from '../rules/layers';
import { runBronzePasses } from './bronze';
import { awaitPasses } from './checkpoint-owner';

const { requestPasses } = wf.proxyActivities<Activities>({ startToCloseTimeout: '1 minute', retry: { maximumInterval: '10 seconds' } });

/** Asks one layer owner (silver or gold) for a pass and waits for it. */
async function layerPass(workflowId: string, workflowType: string, input: unknown, tag: string): Promise<PassSummary> {
  const [summary] = await awaitPasses(
    (requests, replyTo) => requestPasses({ replyTo, targets: requests.map(({ requestId }) => ({ requestId, workflowId, workflowType, input })) }),
    [workflowId],
    tag,
  );
  return summary;
}

export interface PipelinePass {
  pass: number;
  startedAt: string;
  finishedAt: string;
  bronze: PassSummary[];
  silver?: PassSummary;
  gold?: PassSummary;
}

export interface PipelineStatus {
  passes: number;
  lastPass?: PipelinePass;
  running: boolean;
  continuous: boolean;
  intervalSeconds: number;
}

export const pipelineStatusQuery = wf.defineQuery<PipelineStatus>('status');

export interface PipelineRunInput extends PipelineInput {
  carried?: { passes: number; lastPass?: PipelinePass };
}

export async function medallionPipeline(input: PipelineRunInput = {}): Promise<PipelinePass | undefined> {
  const { carried, ...userInput } = input;
  const cfg = parseOrFail(pipelineInputSchema, userInput, 'pipeline');
  let passes = carried?.passes ?? 0;
  let lastPass = carried?.lastPass;
  let running = false;
  wf.setHandler(pipelineStatusQuery, () => ({ passes, lastPass, running, continuous: cfg.continuous, intervalSeconds: cfg.intervalSeconds }));

  for (let passesThisRun = 0; ; passesThisRun++) {
    if (passesThisRun >= cfg.passesPerRun || wf.workflowInfo().continueAsNewSuggested) {
      await wf.continueAsNew<typeof medallionPipeline>({ ...userInput, carried: { passes, lastPass } });
    }
    running = true;
    const startedAt = new Date(Date.now()).toISOString();
    const tag = `pass-${passes}`;
    const pass: PipelinePass = { pass: passes, startedAt, finishedAt: startedAt, bronze: [] };
    if (cfg.layers.includes('bronze')) pass.bronze = await runBronzePasses(cfg, tag);
    if (cfg.layers.includes('silver')) {
      pass.silver = await layerPass(`${cfg.workflowIdPrefix}${SILVER_WORKFLOW_ID}`, 'silverWorkflow', cfg.silver ?? {}, tag);
    }
    if (cfg.layers.includes('gold')) {
      pass.gold = await layerPass(`${cfg.workflowIdPrefix}${GOLD_WORKFLOW_ID}`, 'goldWorkflow', cfg.gold ?? {}, tag);
    }
    pass.finishedAt = new Date(Date.now()).toISOString();
    lastPass = pass;
    passes++;
    running = false;
    if (!cfg.continuous) return lastPass;
    await wf.sleep(cfg.intervalSeconds * 1000);
  }
}
