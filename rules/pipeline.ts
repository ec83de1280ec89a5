// Input of the medallion pipeline workflow.
import { z } from 'zod';
import { bronzeRunInputSchema } from './bronze';
import { goldInputSchema, silverInputSchema } from './layers';

export const LAYERS = ['bronze', 'silver', 'gold'] as const;

export const pipelineInputSchema = bronzeRunInputSchema
  .extend({
    layers: z.array(z.enum(LAYERS)).min(1).default([...LAYERS]),
    silver: silverInputSchema.optional(),
    gold: goldInputSchema.optional(),
    /** Loop forever with `intervalSeconds` between passes, instead of one pass. */
    continuous: z.boolean().default(false),
    intervalSeconds: z.number().min(0).max(86_400).default(10),
    /** Passes per workflow run before continueAsNew keeps history small. */
    passesPerRun: z.number().int().min(1).max(10_000).default(100),
  })
  .strict();
export type PipelineInput = z.input<typeof pipelineInputSchema>;

/**
 * `triggerPass`'s argument. The landing watcher names the folders where files landed (relative
 * to the landing root); without folders the pass runs every bronze source.
 */
export const triggerRequestSchema = z.object({ folders: z.array(z.string().min(1)).optional() }).strict();
export type TriggerRequest = z.infer<typeof triggerRequestSchema>;
