// Naming rules of the landing zone, shared by the generator (writer) and bronze (reader).
import { ApplicationFailure } from '@temporalio/common';
import { existsSync, realpathSync } from 'node:fs';
import path from 'node:path';
import type { Scenario } from '../rules/generator';
import { isObjectUrl, isRemotePath, parseObjectUrl } from './object-store';

/** Temp files start with a dot or end in .tmp: readers of the landing zone skip them. */
export function isTempLandingName(name: string): boolean {
  return name.startsWith('.') || name.endsWith('.tmp');
}

export function landingFileName(scenario: Scenario, tickTime: Date, tick: number): string {
  const stamp = tickTime.toISOString().replace(/[-:]/g, '').replace('.', '');
  return `${scenario.device}_${scenario.status}_${stamp}_${String(tick).padStart(8, '0')}.parquet`;
}

/**
 * The landing folder `dir` if it lies under one of `roots` (symbolic links resolved), else why
 * not: readers and the generator never touch files outside the configured landing roots.
 */
export function landingPathProblem(dir: string, roots: string[]): string | undefined {
  if (isRemotePath(dir)) return objectPrefixProblem(dir, roots);
  const real = (p: string) => {
    let probe = path.resolve(p);
    const rest: string[] = [];
    // Resolve the deepest part that exists: a landing folder may not be created yet.
    while (!existsSync(probe) && path.dirname(probe) !== probe) {
      rest.unshift(path.basename(probe));
      probe = path.dirname(probe);
    }
    return path.join(realpathSync(probe), ...rest);
  };
  const target = real(dir);
  const inside = roots.map(real).some((root) => target === root || target.startsWith(root.endsWith(path.sep) ? root : root + path.sep));
  return inside ? undefined : `${dir} is outside the landing roots (${roots.join(', ')}); allow it with NETPULSE_LANDING_ROOTS (folders separated by ${path.delimiter})`;
}

/** The same for an object-store prefix: under one of the s3:// roots, no `..` in it. */
function objectPrefixProblem(prefix: string, roots: string[]): string | undefined {
  if (!isObjectUrl(prefix)) return `${prefix}: a landing zone is a folder or an s3:// prefix`;
  try {
    parseObjectUrl(prefix);
  } catch (error) {
    return (error as Error).message;
  }
  const inside = roots.filter(isObjectUrl).some((root) => prefix === root || prefix.startsWith(root.endsWith('/') ? root : `${root}/`));
  return inside ? undefined : `${prefix} is outside the landing roots (${roots.join(', ')}); allow it with NETPULSE_LANDING_ROOTS`;
}

/** Throws a non-retryable InvalidInput for a landing folder outside the roots. */
export function assertLandingPath(dir: string, roots: string[]): void {
  const problem = landingPathProblem(dir, roots);
  if (problem) throw ApplicationFailure.create({ type: 'InvalidInput', nonRetryable: true, message: problem });
}
