// The medallion pipeline: one availableNow pass over every layer, once or continuously.
// Bronze sources run in parallel (each in its own checkpoint workflow); later layers follow.
import * as wf from '@temporalio/workflow';
import type { PassSummary } from '../rules/bronze';
import { pipelineInputSchema, type PipelineInput } from '../rules/pipeline';
import { parseOrFail } from '../rules/validate';
import { runBronzePasses } from './bronze';

export interface PipelinePass {
  pass: number;
  startedAt: string;
  finishedAt: string;
  bronze: PassSummary[];
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
    const bronze = await runBronzePasses(cfg, `pass-${passes}`);
    lastPass = { pass: passes, startedAt, finishedAt: new Date(Date.now()).toISOString(), bronze };
    passes++;
    running = false;
    if (!cfg.continuous) return lastPass;
    await wf.sleep(cfg.intervalSeconds * 1000);
  }
}
