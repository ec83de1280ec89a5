// Turns a zod failure into one readable, non-retryable error that names each bad field.
// Safe inside workflows: zod and ApplicationFailure are deterministic, no I/O.
import { ApplicationFailure } from '@temporalio/common';
import type { z } from 'zod';

export const INVALID_INPUT = 'InvalidInput';

export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length ? issue.path.join('.') : '(input)'}: ${issue.message}`)
    .join('; ');
}

export function parseOrFail<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  throw ApplicationFailure.create({
    type: INVALID_INPUT,
    nonRetryable: true,
    message: `Invalid ${what} input: ${describeIssues(result.error)}`,
  });
}
