// Where a landing zone may be, for every workflow input that names one.
import { z } from 'zod';

/** A landing zone: an absolute folder or an s3://bucket/prefix, never climbing with `..`. */
export const landingLocationSchema = z.string()
  .refine((p) => p.startsWith('/') || /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/|$)/i.test(p), 'must be an absolute path or an s3://bucket/prefix')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ".."');
