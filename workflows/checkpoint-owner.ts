// The loop every checkpoint-owning workflow shares (bronze sources, silver, gold): passes are
// asked for by signal (with a reply-to workflow) or update, served one at a time, and the
// workflow continues as new between passes when its history grows. Deterministic code only.
import * as wf from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { PassSummary } from '../rules/pass';

/** Every layer's activities: back off to a minute; bad input is not retried. */
export const activityRetry: wf.RetryPolicy = {
  initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', nonRetryableErrorTypes: ['InvalidInput'],
};
const planningOptions: wf.ActivityOptions = { startToCloseTimeout: '5 minutes', retry: activityRetry };
const localPlanning = wf.proxyLocalActivities<Activities>(planningOptions);
const remotePlanning = wf.proxyActivities<Activities>(planningOptions);

/** Workflows started before planning ran as local activities replay the old commands. */
export const LOCAL_PLANNING_PATCH = 'local-planning-activities';

/**
 * Planning and checkpoint reads are short, read-only and safe to repeat: local activities,
 * run by the worker without a server round trip each (the batch itself stays a normal,
 * heartbeating activity that another worker can retry).
 */
export function planningActivities(): typeof localPlanning {
  return wf.patched(LOCAL_PLANNING_PATCH) ? localPlanning : remotePlanning;
}

export interface PassRequest {
  requestId: string;
  /** Workflow to signal with passDone when the pass that serves this request ends. */
  replyTo?: string;
}

export const requestPassSignal = wf.defineSignal<[PassRequest]>('requestPass');
export const passDoneSignal = wf.defineSignal<[PassSummary & { requestId: string }]>('passDone');
export const runPassUpdate = wf.defineUpdate<PassSummary>('runPass');

export interface OwnerLoop {
  /** Requests carried over from the previous run. */
  queued?: PassRequest[];
  runOnStart: boolean;
  runPass: () => Promise<PassSummary>;
  /** Called between passes with no request waiting: continue as new if it returns true. */
  shouldContinueAsNew: () => boolean;
  continueAsNew: (queued: PassRequest[]) => Promise<never>;
}

export class CheckpointOwner {
  readonly requests: PassRequest[] = [];
  passRunning = false;
  private readonly finished = new Map<string, PassSummary>();

  constructor(private readonly loop: OwnerLoop) {
    this.requests.push(...(loop.queued ?? []));
    if (loop.runOnStart) this.requests.push({ requestId: 'on-start' });
    wf.setHandler(requestPassSignal, (request) => void this.requests.push(request));
    wf.setHandler(runPassUpdate, async () => {
      const requestId = `update-${wf.uuid4()}`;
      this.requests.push({ requestId });
      await wf.condition(() => this.finished.has(requestId));
      const summary = this.finished.get(requestId)!;
      this.finished.delete(requestId);
      return summary;
    });
  }

  async serve(): Promise<never> {
    for (;;) {
      await wf.condition(() => this.requests.length > 0);
      const serving = this.requests.splice(0);
      this.passRunning = true;
      const summary = await this.loop.runPass();
      this.passRunning = false;
      for (const request of serving) {
        if (!request.replyTo) {
          this.finished.set(request.requestId, summary);
          continue;
        }
        try {
          await wf.getExternalWorkflowHandle(request.replyTo).signal(passDoneSignal, { ...summary, requestId: request.requestId });
        } catch (error) {
          wf.log.warn('requester is gone; pass result not delivered', { replyTo: request.replyTo, error: String(error) });
        }
      }
      if (this.requests.length === 0 && (this.loop.shouldContinueAsNew() || wf.workflowInfo().continueAsNewSuggested)) {
        await wf.condition(wf.allHandlersFinished);
        if (this.requests.length === 0) await this.loop.continueAsNew(this.requests);
      }
    }
  }
}

/**
 * Asks checkpoint owners for a pass each (the activity starts them if needed) and waits for
 * all their replies. Runs inside the requesting workflow.
 */
export async function awaitPasses(
  ask: (requests: { requestId: string; key: string }[], replyTo: string) => Promise<unknown>,
  keys: string[],
  tag: string,
): Promise<PassSummary[]> {
  const done = (replies ??= installReplyHandler());
  const requests = keys.map((key) => ({ key, requestId: `${wf.workflowInfo().runId}:${tag}:${key}` }));
  await ask(requests, wf.workflowInfo().workflowId);
  await wf.condition(() => requests.every((r) => done.has(r.requestId)));
  return requests.map((r) => {
    const summary = done.get(r.requestId)!;
    done.delete(r.requestId);
    return summary;
  });
}

// Workflow module state is per workflow execution in the TypeScript SDK's isolate.
let replies: Map<string, PassSummary> | undefined;
function installReplyHandler(): Map<string, PassSummary> {
  const done = new Map<string, PassSummary>();
  wf.setHandler(passDoneSignal, ({ requestId, ...summary }) => void done.set(requestId, summary));
  return done;
}

/** An empty pass summary at the owner's current version; the pass fills it in. */
export function startSummary(layer: PassSummary['layer'], source: string, version: number): PassSummary {
  const startedAt = new Date(Date.now()).toISOString();
  return { layer, source, batches: 0, files: 0, rows: 0, quarantined: 0, fromVersion: version, toVersion: version, startedAt, finishedAt: startedAt };
}
