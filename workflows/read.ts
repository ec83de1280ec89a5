// Short read workflows: the worker owns the lake file, so the CLI and the dashboard read
// through it. Bad SQL fails at once (non-retryable); a busy worker is retried briefly.
import * as wf from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { GoldReport, QueryResult } from '../activities/read';

const { queryLake, readGoldReport, resetLake } = wf.proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: ['InvalidQuery', 'ReadOnly', 'InvalidAsOf'] },
});

export async function lakeQuery(input: { sql: string; maxRows?: number }): Promise<QueryResult> {
  return queryLake(input);
}

export async function goldReport(input: { asOfVersion?: number; asOfTime?: string } = {}): Promise<GoldReport> {
  return readGoldReport(input);
}

/** Drops the lake's tables through the worker that owns the file (the CLI's reset). */
export async function lakeReset(): Promise<{ dropped: string[] }> {
  return resetLake();
}
