// Fault injection for the fault suites (test/reliability.test.ts, test/outages.test.ts), never set
// in production: a batch that waits where a test can SIGKILL its process (before or after its
// COMMIT), fails once after its COMMIT, or fails every attempt while a poison file names it.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Fault injection for the fault tests (never set in production): with NETPULSE_FAILPOINT_DIR,
 * a process about to COMMIT (or, with NETPULSE_FAILPOINT_AT=after-commit, just after its COMMIT,
 * before the activity reports) writes <dir>/<name>.<pid> (the batch id inside) and waits
 * NETPULSE_FAILPOINT_WAIT_MS, so a test can SIGKILL it there. Only batches matching
 * NETPULSE_FAILPOINT_BATCHES (a regular expression) stop there; with NETPULSE_FAILPOINT_ONCE, only
 * the first batch to reach it in any process.
 */
export async function failpoint(name: 'before-commit' | 'after-commit', detail: string): Promise<void> {
  const dir = process.env.NETPULSE_FAILPOINT_DIR;
  if (!dir || !process.env.NETPULSE_FAILPOINT_WAIT_MS || (process.env.NETPULSE_FAILPOINT_AT ?? 'before-commit') !== name) return;
  const only = process.env.NETPULSE_FAILPOINT_BATCHES;
  if (only && !new RegExp(only).test(detail)) return;
  if (process.env.NETPULSE_FAILPOINT_ONCE && readdirSync(dir).some((f) => f.startsWith(`${name}.`))) return;
  writeFileSync(path.join(dir, `${name}.${process.pid}`), detail);
  await new Promise((resolve) => setTimeout(resolve, Number(process.env.NETPULSE_FAILPOINT_WAIT_MS)));
}

/**
 * Fault injection after the COMMIT (never set in production): with NETPULSE_FAIL_AFTER_COMMIT (a
 * regular expression of batch ids) and NETPULSE_FAILPOINT_DIR, the first attempt of each matching
 * batch fails once its transaction is committed, before the activity returns its result.
 */
export function failAfterCommit(batchId: string): void {
  const pattern = process.env.NETPULSE_FAIL_AFTER_COMMIT;
  const dir = process.env.NETPULSE_FAILPOINT_DIR;
  if (!pattern || !dir || !new RegExp(pattern).test(batchId)) return;
  const marker = path.join(dir, `failed-after-commit.${batchId.replace(/[^\w.-]+/g, '_')}`);
  if (existsSync(marker)) return;
  writeFileSync(marker, batchId);
  throw new Error(`injected failure after the commit of ${batchId} (NETPULSE_FAIL_AFTER_COMMIT)`);
}

/**
 * A poison batch for the parking tests (never set in production): while <NETPULSE_FAILPOINT_DIR>/poison
 * exists and its text (a regular expression) matches the batch id, the batch fails before it writes.
 */
export function poisonFailpoint(batchId: string): void {
  const dir = process.env.NETPULSE_FAILPOINT_DIR;
  const file = dir && path.join(dir, 'poison');
  if (!file || !existsSync(file) || !new RegExp(readFileSync(file, 'utf8').trim()).test(batchId)) return;
  throw new Error(`injected poison: batch ${batchId} fails while ${file} matches it`);
}
