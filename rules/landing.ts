// Where a landing zone may be, for every workflow input that names one.
import { z } from 'zod';

/** s3://bucket[/key…]: the bucket (S3's naming rules) and the key. The one definition of an s3 location. */
export const S3_LOCATION = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/i;

/** An absolute folder or an s3://bucket/prefix. */
export const isAbsoluteLocation = (p: string): boolean => p.startsWith('/') || S3_LOCATION.test(p);

/** A landing zone: an absolute folder or an s3://bucket/prefix, never climbing with `..`. */
export const landingLocationSchema = z.string()
  .refine(isAbsoluteLocation, 'must be an absolute path or an s3://bucket/prefix')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ".."');
