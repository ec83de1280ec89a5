// Lake writes the worker does for the pipeline and the CLI that are not batches: the pipeline's
// pass rows in the event log, and dropping every table (reset).
import { Context } from '@temporalio/activity';
import { withLake } from '../lake/catalog';
import { eventLogInsert } from '../lake/commit';
import type { PassSummary } from '../rules/pass';
import type { LakeDeps } from './context';

export function readActivities(deps: LakeDeps) {
  /** One event-log row per pipeline pass, with its per-layer summaries. */
  async function logPipelinePass(pass: { pass: number; startedAt: string; finishedAt: string; bronze: PassSummary[]; silver?: PassSummary; gold?: PassSummary }): Promise<void> {
    const { workflowExecution } = Context.current().info;
    const bronzeRows = pass.bronze.reduce((n, b) => n + b.rows, 0);
    // A retried activity must not log the pass twice: the row is keyed by run and pass number.
    await withLake(deps.lake, (db) => db.run(eventLogInsert({
      kind: 'pass', layer: 'pipeline', source: workflowExecution?.workflowId ?? 'pipeline', batchId: `pass-${pass.pass}`,
      rowsIn: bronzeRows, rowsOut: pass.silver?.rows, quarantined: pass.bronze.reduce((n, b) => n + b.quarantined, 0) + (pass.silver?.quarantined ?? 0),
      durationMs: Date.parse(pass.finishedAt) - Date.parse(pass.startedAt),
      workflowId: workflowExecution?.workflowId, runId: workflowExecution?.runId, details: pass,
    }, { once: true })).then(() => undefined));
  }

  /** The event-log row of a parked batch: the owner stopped retrying it and waits for retryParked. */
  async function logParked({ layer, source, parked }: { layer: string; source: string; parked: { batchId?: string; reason: string; since: string } }): Promise<void> {
    const { workflowExecution } = Context.current().info;
    await withLake(deps.lake, (db) => db.run(eventLogInsert({
      kind: 'parked', layer, source, batchId: parked.batchId ?? `parked-${parked.since}`, durationMs: 0,
      workflowId: workflowExecution?.workflowId, runId: workflowExecution?.runId, details: parked,
    }, { once: true })).then(() => undefined));
  }

  return { logPipelinePass, logParked };
}
