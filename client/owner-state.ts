// The checkpoint owners' own state, read with their `checkpoint` query, for every client surface
// (status, owners list, continuous status, the dashboard): one way to ask, one way to say what an
// owner is doing, including an activity it is retrying right now.
import { WorkflowNotFoundError, type WorkflowClient } from '@temporalio/client';
import { bronzeWorkflowId, DEFAULT_SOURCES, type Source } from '../rules/bronze';
import { GOLD_WORKFLOW_ID, SILVER_WORKFLOW_ID } from '../rules/layers';
import type { PassSummary } from '../rules/pass';
import { silverShardOwner, silverShards } from '../rules/shards';
import type { Parked, Retrying } from '../workflows/checkpoint-owner';

/** What every owner's query answers, whatever its layer. */
export interface OwnerState {
  passRunning: boolean;
  lastPass?: PassSummary;
  parked?: Parked;
  retrying?: Retrying;
  lagFiles?: number;
  lagMeasuredAt?: string;
}

export type Queried<T> = { state: T } | { missing: true } | { failed: string };

/** An owner's state; a workflow never started is not an error, any other failure is said. */
export async function queryOwner<T = OwnerState>(workflows: WorkflowClient, workflowId: string): Promise<Queried<T>> {
  try {
    return { state: await workflows.getHandle(workflowId).query<T>('checkpoint') };
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return { missing: true };
    // The server's reason is the innermost cause, e.g. no worker polling the workflow's task queue.
    let reason = error as Error;
    while (reason.cause instanceof Error) reason = reason.cause;
    return { failed: `query failed: ${reason.message.split('\n')[0].replace(/^\d+ [A-Z_]+: /, '')}` };
  }
}

/** Silver's owner workflows: one per shard (the one silver owner of an unsharded lake). */
export function silverOwnerIds(shards: number, prefix = ''): string[] {
  return silverShards(shards).map((shard) => `${prefix}${shards === 1 ? SILVER_WORKFLOW_ID : silverShardOwner(shard)}`);
}

/** The default pipeline's owners (or a prefixed one's), bronze sources first, silver's `shards`. */
export function ownerIds(sources: Source[] = DEFAULT_SOURCES, prefix = '', shards = 1): { workflowId: string; layer: 'bronze' | 'silver' | 'gold' }[] {
  return [
    ...sources.map((s) => ({ workflowId: bronzeWorkflowId(s, prefix), layer: 'bronze' as const })),
    ...silverOwnerIds(shards, prefix).map((workflowId) => ({ workflowId, layer: 'silver' as const })),
    { workflowId: `${prefix}${GOLD_WORKFLOW_ID}`, layer: 'gold' },
  ];
}

/** A retrying activity in one cell: the attempt coming, since when, the last error. */
export function retryingCell(r?: Retrying): string {
  if (!r) return '';
  return `${r.step}${r.batchId ? ` ${r.batchId}` : ''} attempt ${r.attempt}/${r.maxAttempts} at ${r.nextAttemptAt}, failing since ${r.since}: ${r.lastError}`;
}

/** A parked batch in one cell: which, since when, why (retry with `netpulse owners retry-parked`). */
export function parkedCell(parked?: Parked): string {
  return parked ? `${parked.batchId ?? 'pass'} since ${parked.since}: ${parked.reason}` : '';
}

/**
 * Files waiting after the owner's last batch; while its activity is retrying, that count is older
 * than the failure and may be wrong: said so, not shown as a number.
 */
export function lagCell(state: OwnerState): number | string {
  if (state.retrying && (!state.lagMeasuredAt || state.lagMeasuredAt < state.retrying.since)) return `unknown (retrying since ${state.retrying.since})`;
  return state.lagFiles ?? 0;
}
