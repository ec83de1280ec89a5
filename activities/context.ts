// Activity context: what activities work on (their deps), who runs a batch (for the event log),
// whether it is a retry, and liveness while it runs.
import { Context } from '@temporalio/activity';
import type { LakeConfig } from '../lake/catalog';
import type { BatchIdentity } from '../lake/commit';

/** What every lake activity works on: the lake, and the landing zone (bronze, the generator). */
export interface LakeDeps {
  lake: LakeConfig;
  landingDir: string;
  /** Folders landing zones may lie under; default config.landingRoots and landingDir. */
  landingRoots?: string[];
}

export function batchLog(layer: string, source: string): NonNullable<BatchIdentity['log']> {
  const { workflowExecution } = Context.current().info;
  return { layer, source, workflowId: workflowExecution?.workflowId, runId: workflowExecution?.runId };
}

/**
 * True on a retry: only then can an earlier attempt of the same batch have committed it (the
 * first attempt skips looking, one catalog read fewer per batch). The owner workflow retries its
 * activities itself and says which attempt this is (`attempt`); runs from before that let the
 * server retry them.
 */
export function isRetry(attempt?: number): boolean {
  return (attempt ?? 1) > 1 || Context.current().info.attempt > 1;
}

/**
 * Heartbeats now and every `ms` until the returned stop function is called: one DuckDB
 * statement can outlast the heartbeat timeout, and a silent activity would be retried while
 * it still runs.
 */
export function heartbeatEvery(ms: number, details: () => unknown): () => void {
  const ctx = Context.current();
  ctx.heartbeat(details());
  const timer = setInterval(() => ctx.heartbeat(details()), ms);
  return () => clearInterval(timer);
}
