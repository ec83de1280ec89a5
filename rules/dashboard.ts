// What a dashboard request may carry: on reads only `as_of`, a gold snapshot id or an ISO time; on
// the one write, a throttle decision. Nothing in a request becomes SQL text or a file path; anything
// else is a 400.
import { z } from 'zod';
import { clientKeySchema, OPERATOR_ACTIONS, reasonSchema } from './throttle';

export const dashboardQuerySchema = z
  .object({
    as_of: z.union([
      z.string().regex(/^\d{1,15}$/, 'a snapshot id (digits)').transform(Number),
      z.iso.datetime({ offset: true }),
    ]).optional(),
  })
  .strict();

export function asOfFromQuery(query: z.output<typeof dashboardQuerySchema>): { asOfVersion?: number; asOfTime?: string } {
  if (query.as_of === undefined) return {};
  return typeof query.as_of === 'number' ? { asOfVersion: query.as_of } : { asOfTime: new Date(query.as_of).toISOString() };
}

/** What the page may ask of a throttle: one of the operator's decisions, for one client, with a reason. */
export const decisionRequestSchema = z
  .object({
    client: clientKeySchema,
    action: z.enum(OPERATOR_ACTIONS),
    reason: reasonSchema.default(''),
  })
  .strict();
