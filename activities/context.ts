// Who is running a batch, for the event log: the calling workflow's id and run.
import { Context } from '@temporalio/activity';
import type { BatchIdentity } from '../lake/commit';

export function batchLog(layer: string, source: string): NonNullable<BatchIdentity['log']> {
  const { workflowExecution } = Context.current().info;
  return { layer, source, workflowId: workflowExecution?.workflowId, runId: workflowExecution?.runId };
}
