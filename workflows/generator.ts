// Device simulator: every interval, one landing file per scenario. Deterministic code only.
import * as wf from '@temporalio/workflow';
import type { Activities } from '../activities';
import { generatorInputSchema, type GeneratorInput, type GeneratorProgress } from '../rules/generator';
import { parseOrFail } from '../rules/validate';

const { writeLandingBatch } = wf.proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', nonRetryableErrorTypes: ['InvalidInput'] },
});

export const generatorProgressQuery = wf.defineQuery<GeneratorProgress & { running: boolean }>('progress');

export interface GeneratorRunInput extends GeneratorInput {
  /** Set by the workflow itself when it continues as new. */
  progress?: GeneratorProgress;
}

export async function generatorWorkflow(input: GeneratorRunInput = {}): Promise<GeneratorProgress> {
  const { progress: carried, ...userInput } = input;
  const cfg = parseOrFail(generatorInputSchema, userInput, 'generator');
  // Math.random is seeded by Temporal inside workflows, so this is replay-safe.
  const progress: GeneratorProgress = carried ?? {
    ticksDone: 0, filesWritten: 0, rowsWritten: 0, lastFiles: [],
    seed: cfg.seed ?? Math.floor(Math.random() * 2 ** 31),
  };
  let running = true;
  wf.setHandler(generatorProgressQuery, () => ({ ...progress, running }));

  const startMs = cfg.startTime ? Date.parse(cfg.startTime) : undefined;
  for (let ticksThisRun = 0; cfg.ticks === undefined || progress.ticksDone < cfg.ticks; ticksThisRun++) {
    if (ticksThisRun >= cfg.ticksPerRun || wf.workflowInfo().continueAsNewSuggested) {
      await wf.continueAsNew<typeof generatorWorkflow>({ ...userInput, progress });
    }
    if (progress.ticksDone > 0 && cfg.intervalSeconds > 0) await wf.sleep(cfg.intervalSeconds * 1000);
    const tickTime = new Date(startMs !== undefined ? startMs + progress.ticksDone * cfg.intervalSeconds * 1000 : Date.now());
    const { files, connected } = await writeLandingBatch({
      landingPath: cfg.landingPath,
      tick: progress.ticksDone,
      tickTime: tickTime.toISOString(),
      intervalSeconds: cfg.intervalSeconds,
      seed: progress.seed,
      scenarios: cfg.scenarios,
      mode: cfg.mode,
      population: cfg.population,
      connected: progress.connected,
    });
    progress.connected = connected;
    progress.ticksDone++;
    progress.filesWritten += files.length;
    progress.rowsWritten += files.reduce((sum, f) => sum + f.rows, 0);
    progress.lastFiles = files.map((f) => f.path);
    progress.lastTickAt = tickTime.toISOString();
  }
  running = false;
  return progress;
}
