// Asking checkpoint owners for passes, the requester's side (the pipeline, bronze runs): signal
// each owner (starting those not running), then wait for every answer, with a time limit.
// Deterministic code only; the owner's side is checkpoint-owner.ts.
import { ApplicationFailure } from '@temporalio/common';
import * as wf from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { PassRequest, PassSummary, PassTarget } from '../rules/pass';

export const requestPassSignal = wf.defineSignal<[PassRequest]>('requestPass');
export const passDoneSignal = wf.defineSignal<[PassSummary & { requestId: string }]>('passDone');
export const runPassUpdate = wf.defineUpdate<PassSummary>('runPass');

/** Requesters that started before owners were signalled directly replay the requestPasses activity. */
export const DIRECT_SIGNAL_PATCH = 'signal-owners-directly';

const { requestPasses } = wf.proxyActivities<Activities>({ startToCloseTimeout: '1 minute', retry: { maximumInterval: '10 seconds' } });

/**
 * Asks owners for a pass: a signal straight from this workflow to each running owner (a server
 * command, no activity round trip on the critical path); owners not running (first pass, or
 * stopped) are started by the requestPasses activity with signalWithStart.
 */
export async function askOwners({ targets, replyTo }: { targets: PassTarget[]; replyTo: string }): Promise<void> {
  if (!wf.patched(DIRECT_SIGNAL_PATCH)) {
    await requestPasses({ targets, replyTo });
    return;
  }
  const signalled = await Promise.all(targets.map((target) =>
    wf.getExternalWorkflowHandle(target.workflowId)
      .signal(requestPassSignal, { requestId: target.requestId, replyTo, config: target.config })
      .then(() => true, () => false)));
  const notRunning = targets.filter((_, i) => !signalled[i]);
  if (notRunning.length > 0) await requestPasses({ targets: notRunning, replyTo });
}

/** Requesters that started before passes had a time limit replay without its timer. */
const PASS_TIMEOUT_PATCH = 'pass-answer-timeout';

/**
 * Asks checkpoint owners for a pass each (the activity starts them if needed) and waits for
 * all their replies. Runs inside the requesting workflow.
 */
export async function awaitPasses(
  ask: (requests: { requestId: string; key: string }[], replyTo: string) => Promise<unknown>,
  keys: string[],
  { tag, timeoutSeconds, noAnswer }: { tag: string; timeoutSeconds: number; noAnswer: (key: string) => PassSummary },
): Promise<PassSummary[]> {
  const done = (replies ??= installReplyHandler());
  const requests = keys.map((key) => ({ key, requestId: `${wf.workflowInfo().runId}:${tag}:${key}` }));
  await ask(requests, wf.workflowInfo().workflowId);
  // Owners answer even when they park a batch; no answer means no worker runs them (or one was terminated).
  const answered = () => requests.every((r) => done.has(r.requestId));
  if (wf.patched(PASS_TIMEOUT_PATCH)) await wf.condition(answered, `${timeoutSeconds} seconds`);
  else await wf.condition(answered);
  return requests.map((r) => {
    const summary = done.get(r.requestId);
    done.delete(r.requestId);
    if (summary?.refused) throw ApplicationFailure.nonRetryable(summary.refused, 'OwnerOptionsDiffer');
    if (summary) return summary;
    wf.log.error('checkpoint owner did not answer in time; the pass goes on without it', { key: r.key, timeoutSeconds });
    return { ...noAnswer(r.key), noAnswer: `no answer within ${timeoutSeconds} s` };
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
