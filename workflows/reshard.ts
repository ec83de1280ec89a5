// Resharding silver: one activity on a worker (the writer role moves the tables), started by
// `netpulse silver reshard` once it has drained silver and gold. Deterministic code only.
import * as wf from '@temporalio/workflow';
import type { Activities } from '../activities';
import { shardCountSchema } from '../rules/shards';
import { parseOrFail } from '../rules/validate';
import { z } from 'zod';

const { reshardSilver } = wf.proxyActivities<Activities>({
  startToCloseTimeout: '2 hours',
  // A refusal (not drained) is final; a lost catalog connection is worth a few more tries.
  retry: { maximumAttempts: 5, maximumInterval: '30 seconds', nonRetryableErrorTypes: ['SilverNotDrained', 'InvalidInput'] },
});

export const reshardInputSchema = z.object({ shards: shardCountSchema }).strict();

export async function reshardSilverWorkflow(input: z.input<typeof reshardInputSchema>) {
  return reshardSilver(parseOrFail(reshardInputSchema, input, 'reshard'));
}
