// Build step: bundle the workflow code once, so a worker starts without running webpack
// (which takes seconds and hundreds of MiB at every start).
import { bundleWorkflowCode } from '@temporalio/worker';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

async function main(): Promise<void> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve(path.join(__dirname, '..', 'workflows')),
    logger: { trace() {}, debug() {}, info() {}, log() {}, warn: console.warn, error: console.error } as never,
  });
  const out = path.join(__dirname, '..', 'workflow-bundle.js');
  writeFileSync(out, code);
  console.error(`[build] workflow bundle: ${out} (${(code.length / 1024).toFixed(0)} KiB)`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
