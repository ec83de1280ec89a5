// The medallion pipeline: one availableNow pass over every layer, once or continuously.
// Bronze sources run in parallel (each in its own checkpoint workflow); later layers follow.
import * as wf from '@temporalio/workflow';
import type { z } from 'zod';
import { pipelineInputSchema, triggerRequestSchema, type PipelineInput, type TriggerRequest } from '../rules/pipeline';
import { describeIssues, parseOrFail } from '../rules/validate';
import type { Activities } from '../activities';
import { GOLD_WORKFLOW_ID, goldInputSchema, SILVER_WORKFLOW_ID, silverInputSchema, type SilverWorkflowInput } from '../rules/layers';
import { shardCountSchema, silverShardOwner, silverShards } from '../rules/shards';
import { failOnMissingLanding, runBronzePasses } from './bronze';
import { ownerConfigKey, type PassSummary } from '../rules/pass';
import { askOwners, awaitPasses, DIRECT_SIGNAL_PATCH, startSummary } from './requests';

const { logPipelinePass } = wf.proxyActivities<Activities>({ startToCloseTimeout: '1 minute', retry: { maximumInterval: '10 seconds' } });
const { prepareSilverShards } = wf.proxyLocalActivities<Activities>({
  startToCloseTimeout: '2 minutes', retry: { maximumInterval: '10 seconds', maximumAttempts: 10, nonRetryableErrorTypes: ['SilverShardsDiffer', 'InvalidInput'] },
});

/** Pipelines started before silver had shards ask the one silver owner, without asking the lake. */
const SILVER_SHARDS_PATCH = 'silver-shards';

interface LayerOwner { workflowId: string; input: unknown; source: string }

/** Asks layer owners (gold, or silver's shards) for a pass each, at once, and waits for them all. */
async function layerPasses(layer: 'silver' | 'gold', owners: LayerOwner[], tag: string, timeoutSeconds: number): Promise<PassSummary[]> {
  const workflowType = `${layer}Workflow`;
  const schema = layer === 'silver' ? silverInputSchema : goldInputSchema;
  const byId = new Map(owners.map((o) => [o.workflowId, { ...o, config: ownerConfigKey(parseOrFail(schema, o.input, layer)) }]));
  return awaitPasses(
    (requests, replyTo) => askOwners({
      replyTo,
      targets: requests.map(({ requestId, key }) => {
        const { input, source, config } = byId.get(key)!;
        return { requestId, workflowId: key, workflowType, input, layer, source, config };
      }),
    }),
    owners.map((o) => o.workflowId),
    { tag, timeoutSeconds, noAnswer: (key) => startSummary(layer, byId.get(key)!.source, 0) },
  );
}

/**
 * Silver's pass: the lake says how many shards it has (made with the requested count when new);
 * each shard's owner runs its pass at the same time. A one-shard lake's owner is the one silver
 * owner of before, with the same input.
 */
async function silverPasses(cfg: PipelineConfig, silver: SilverWorkflowInput, tag: string): Promise<PassSummary[]> {
  const { shards: requested, ...ownerInput } = silver;
  const count = wf.patched(SILVER_SHARDS_PATCH) ? await prepareSilverShards({ requested }) : 1;
  const owners = silverShards(count).map((shard) => ({
    workflowId: `${cfg.workflowIdPrefix}${count === 1 ? SILVER_WORKFLOW_ID : silverShardOwner(shard)}`,
    input: count === 1 ? ownerInput : { ...ownerInput, shard },
    source: silverShardOwner(shard),
  }));
  return layerPasses('silver', owners, tag, cfg.passTimeoutSeconds);
}

/** The shards' passes as silver's one summary: counts added up, the widest span of versions and time. */
export function silverSummary(shards: PassSummary[]): PassSummary {
  if (shards.length === 1) return shards[0];
  const details: Record<string, number> = {};
  for (const s of shards) for (const [key, value] of Object.entries(s.details ?? {})) details[key] = (details[key] ?? 0) + value;
  const sum = (field: 'batches' | 'files' | 'rows' | 'quarantined') => shards.reduce((n, s) => n + s[field], 0);
  const parked = shards.find((s) => s.parked);
  const noAnswer = shards.filter((s) => s.noAnswer).map((s) => `${s.source}: ${s.noAnswer}`);
  return {
    layer: 'silver', source: 'silver', batches: sum('batches'), files: sum('files'), rows: sum('rows'), quarantined: sum('quarantined'),
    fromVersion: Math.min(...shards.map((s) => s.fromVersion)), toVersion: Math.max(...shards.map((s) => s.toVersion)),
    startedAt: shards.map((s) => s.startedAt).sort()[0], finishedAt: shards.map((s) => s.finishedAt).sort().at(-1)!, details,
    ...(parked ? { parked: { ...parked.parked!, reason: `${parked.source}: ${parked.parked!.reason}` } } : {}),
    ...(noAnswer.length ? { noAnswer: noAnswer.join('; ') } : {}),
  };
}

export interface PipelinePass {
  pass: number;
  startedAt: string;
  finishedAt: string;
  bronze: PassSummary[];
  silver?: PassSummary;
  /** Each shard's pass, when silver has several (silver is their sum). */
  silverShards?: PassSummary[];
  gold?: PassSummary;
}

export interface PipelineTotals {
  passes: number;
  bronzeFiles: number;
  bronzeRows: number;
  bronzeQuarantined: number;
  silverEvents: number;
  silverQuarantined: number;
  goldRefreshes: number;
}

export interface PipelineStatus {
  continuous: boolean;
  paused: boolean;
  running: boolean;
  intervalSeconds: number;
  nextPassAt?: string;
  lastPass?: PipelinePass;
  lastPassSeconds?: number;
  /** Landing files waiting for bronze after the last pass, per source. */
  bronzeLagFiles: Record<string, number>;
  /** Owners whose last answer was a parked batch or no answer at all, with the reason. */
  stuck: Record<string, string>;
  totals: PipelineTotals;
}

export const pipelineStatusQuery = wf.defineQuery<PipelineStatus>('status');
export const pauseSignal = wf.defineSignal('pause');
export const resumeSignal = wf.defineSignal('resume');
/**
 * A pass asked for now. The landing watcher names the folders where files landed (relative to
 * the landing root): such a pass runs only the bronze sources of those folders (silver and gold
 * as always); a trigger without folders, and every pass the interval starts, runs all of them.
 */
export const triggerPassSignal = wf.defineSignal<[TriggerRequest?]>('triggerPass');
const TRIGGER_VALIDATED_PATCH = 'trigger-request-validated';
export const setIntervalUpdate = wf.defineUpdate<number, [number]>('setInterval');
/** The silver shard count this pipeline asks for, after `netpulse silver reshard` changed the lake's. */
export const setSilverShardsUpdate = wf.defineUpdate<number, [number]>('setSilverShards');

interface Carried {
  totals: PipelineTotals;
  lastPass?: PipelinePass;
  /** Each bronze source's last pass summary (a triggered pass may run only some sources). */
  lastBronze?: Record<string, PassSummary>;
  paused: boolean;
  intervalSeconds: number;
  bronzeLagFiles: Record<string, number>;
}

export interface PipelineRunInput extends PipelineInput {
  carried?: Carried;
}

const emptyTotals = (): PipelineTotals => ({
  passes: 0, bronzeFiles: 0, bronzeRows: 0, bronzeQuarantined: 0, silverEvents: 0, silverQuarantined: 0, goldRefreshes: 0,
});

function addPass(totals: PipelineTotals, pass: PipelinePass): void {
  totals.passes++;
  for (const b of pass.bronze) {
    totals.bronzeFiles += b.files;
    totals.bronzeRows += b.rows;
    totals.bronzeQuarantined += b.quarantined;
  }
  totals.silverEvents += pass.silver?.rows ?? 0;
  totals.silverQuarantined += pass.silver?.quarantined ?? 0;
  totals.goldRefreshes += pass.gold?.batches ?? 0;
}

/** Owners that did not do their part of a pass: parked batches and owners that did not answer. */
export function stuckOwners(pass?: Pick<PipelinePass, 'bronze' | 'silver' | 'silverShards' | 'gold'>): Record<string, string> {
  const all = pass ? [...pass.bronze, ...(pass.silverShards ?? [pass.silver]), pass.gold] : [];
  return Object.fromEntries(all.flatMap((s) => {
    if (s?.parked) return [[`${s.layer} ${s.source}`, `parked ${s.parked.batchId ?? ''}: ${s.parked.reason}`]];
    if (s?.noAnswer) return [[`${s.layer} ${s.source}`, s.noAnswer]];
    if (s?.landingMissing) return [[`${s.layer} ${s.source}`, s.landingMissing]];
    return [];
  }));
}

type PipelineConfig = z.output<typeof pipelineInputSchema>;

export async function medallionPipeline(input: PipelineRunInput = {}): Promise<PipelinePass | undefined> {
  const { carried, ...userInput } = input;
  const cfg = parseOrFail(pipelineInputSchema, userInput, 'pipeline');
  const state: Carried = carried ?? { totals: emptyTotals(), paused: false, intervalSeconds: cfg.intervalSeconds, bronzeLagFiles: {} };
  let running = false;
  let triggered = false;
  let triggeredFolders: Set<string> | 'all' | undefined;
  let startedByTrigger = false;
  let woken = false; // a control changed: recompute the wait
  let nextPassAt: number | undefined;
  let logging: Promise<void> = Promise.resolve();

  wf.setHandler(pipelineStatusQuery, () => ({
    continuous: cfg.continuous, paused: state.paused, running, intervalSeconds: state.intervalSeconds,
    nextPassAt: nextPassAt !== undefined && !state.paused ? new Date(nextPassAt).toISOString() : undefined,
    lastPass: state.lastPass, bronzeLagFiles: state.bronzeLagFiles, totals: state.totals,
    stuck: stuckOwners(state.lastPass && { ...state.lastPass, bronze: state.lastBronze ? Object.values(state.lastBronze) : state.lastPass.bronze }),
    lastPassSeconds: state.lastPass && (Date.parse(state.lastPass.finishedAt) - Date.parse(state.lastPass.startedAt)) / 1000,
  }));
  wf.setHandler(pauseSignal, () => void ((state.paused = true), (woken = true)));
  wf.setHandler(resumeSignal, () => void ((state.paused = false), (woken = true)));
  wf.setHandler(triggerPassSignal, (raw) => {
    triggered = true;
    let request = raw;
    // A signal cannot be refused: a malformed one still triggers a pass, of every source, so
    // no folder is skipped (before the patch, a non-list matched no source).
    const parsed = triggerRequestSchema.optional().safeParse(raw);
    if (!parsed.success && wf.patched(TRIGGER_VALIDATED_PATCH)) {
      wf.log.warn('triggerPass: malformed request, running every bronze source', { request: raw, problem: describeIssues(parsed.error) });
      request = undefined;
    }
    if (!request?.folders?.length) triggeredFolders = 'all';
    else if (triggeredFolders !== 'all') triggeredFolders = new Set([...(triggeredFolders ?? []), ...request.folders]);
  });
  wf.setHandler(setSilverShardsUpdate, (shards) => {
    // Kept in the input the pipeline continues as new with.
    userInput.silver = { ...userInput.silver, shards };
    return shards;
  }, { validator: (shards) => void parseOrFail(shardCountSchema, shards, 'setSilverShards') });
  wf.setHandler(setIntervalUpdate, (seconds) => {
    state.intervalSeconds = seconds;
    if (nextPassAt !== undefined && state.lastPass) nextPassAt = Date.parse(state.lastPass.finishedAt) + seconds * 1000;
    woken = true;
    return seconds;
  }, {
    validator: (seconds) => {
      if (typeof seconds !== 'number' || !(seconds >= 0 && seconds <= 86_400)) {
        throw new Error(`interval must be a number of seconds from 0 to 86400, got ${JSON.stringify(seconds)}`);
      }
    },
  });

  for (let passesThisRun = 0; ; passesThisRun++) {
    if (passesThisRun >= cfg.passesPerRun || wf.workflowInfo().continueAsNewSuggested) {
      await logging;
      await wf.condition(wf.allHandlersFinished);
      await wf.continueAsNew<typeof medallionPipeline>({ ...userInput, carried: state });
    }
    running = true;
    const folders = startedByTrigger && triggeredFolders instanceof Set ? [...triggeredFolders] : undefined;
    triggered = false;
    triggeredFolders = undefined;
    startedByTrigger = false;
    const startedAt = new Date(Date.now()).toISOString();
    const tag = `pass-${state.totals.passes}`;
    const pass: PipelinePass = { pass: state.totals.passes, startedAt, finishedAt: startedAt, bronze: [] };
    if (cfg.layers.includes('bronze')) {
      pass.bronze = await runBronzePasses(cfg, tag, folders);
      if (!cfg.continuous) failOnMissingLanding(pass.bronze);
      for (const b of pass.bronze) state.bronzeLagFiles[b.source] = b.lag ?? 0;
      state.lastBronze = { ...state.lastBronze, ...Object.fromEntries(pass.bronze.map((b) => [b.source, b])) };
    }
    if (cfg.layers.includes('silver')) {
      const silver = userInput.silver === undefined ? {} : parseOrFail(silverInputSchema, userInput.silver, 'silver');
      const shards = await silverPasses(cfg, silver, tag);
      pass.silver = silverSummary(shards);
      if (shards.length > 1) pass.silverShards = shards;
    }
    if (cfg.layers.includes('gold')) {
      const gold = { workflowId: `${cfg.workflowIdPrefix}${GOLD_WORKFLOW_ID}`, input: cfg.gold ?? {}, source: 'gold' };
      [pass.gold] = await layerPasses('gold', [gold], tag, cfg.passTimeoutSeconds);
    }
    pass.finishedAt = new Date(Date.now()).toISOString();
    state.lastPass = pass;
    addPass(state.totals, pass);
    if (cfg.continuous && wf.patched(DIRECT_SIGNAL_PATCH)) {
      // The pass's event-log row is written while the next pass waits or runs, not before it.
      logging = logging.then(() => logPipelinePass(pass)).catch((error: Error) => wf.log.warn('pass not logged', { pass: pass.pass, error: error.message }));
    } else {
      await logPipelinePass(pass);
    }
    running = false;
    if (!cfg.continuous) return pass;

    // Wait for the interval (unless paused), a trigger, or a control that changes the wait.
    nextPassAt = Date.now() + state.intervalSeconds * 1000;
    for (;;) {
      woken = false;
      const waitMs = state.paused ? undefined : Math.max(0, nextPassAt - Date.now());
      const interrupted = await wf.condition(() => triggered || woken, waitMs as number);
      if (triggered) startedByTrigger = true;
      if (triggered || (!interrupted && !state.paused)) break;
    }
    nextPassAt = undefined;
  }
}
