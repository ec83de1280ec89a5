// Inputs of the silver and gold checkpoint workflows.
import { z } from 'zod';
import { goldOptionsSchema } from './gold';
import { silverOptionsSchema } from './silver';
import { shardCountSchema, silverShardSchema } from './shards';

export const silverInputSchema = z
  .object({
    options: silverOptionsSchema.default(silverOptionsSchema.parse({})),
    /**
     * Rows per silver batch, all bronze tables together (whole bronze versions; at least one): a
     * shard of N reads N times this many bronze rows per batch, about this many of them its own.
     */
    maxRowsPerBatch: z.number().int().min(1).default(250_000),
    heartbeatTimeoutSeconds: z.number().min(1).max(600).default(60),
    batchesPerRun: z.number().int().min(1).max(5000).default(200),
    /** Attempts of a failing activity (backing off 1 s … 1 min) before its batch is parked. */
    maxAttempts: z.number().int().min(1).max(1000).default(10),
    /**
     * Pipeline: the shards silver should have. A new lake is made with this many (unset: the
     * worker's NETPULSE_SILVER_SHARDS, else 1); a lake with another count refuses the pass.
     */
    shards: shardCountSchema.optional(),
    /** Owner: the shard this owner workflow runs (set by the pipeline; unset, the one shard of an unsharded lake). */
    shard: silverShardSchema.optional(),
  })
  .strict();
export type SilverWorkflowInput = z.input<typeof silverInputSchema>;

export const goldInputSchema = z
  .object({
    options: goldOptionsSchema.default(goldOptionsSchema.parse({})),
    /** Fixed "now" for the moving windows (ISO); omitted, the workflow's clock at each batch. */
    asOf: z.iso.datetime({ offset: true }).optional(),
    heartbeatTimeoutSeconds: z.number().min(1).max(600).default(60),
    batchesPerRun: z.number().int().min(1).max(5000).default(200),
    /** Attempts of a failing activity (backing off 1 s … 1 min) before its batch is parked. */
    maxAttempts: z.number().int().min(1).max(1000).default(10),
  })
  .strict();
export type GoldWorkflowInput = z.input<typeof goldInputSchema>;

export const SILVER_WORKFLOW_ID = 'silver';
export const GOLD_WORKFLOW_ID = 'gold';
