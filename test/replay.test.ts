// Long-lived owner workflows (bronze-<source>, silver, gold) and the continuous pipeline outlive
// a deploy: histories recorded by an earlier netpulse must replay with today's workflow code, or
// a running workflow fails with a nondeterminism error after an upgrade. Changes that alter
// commands go behind patched().
import { Worker } from '@temporalio/worker';
import { temporal } from '@temporalio/proto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { quietTemporalRuntime } from './helpers';

quietTemporalRuntime(); // replay workers log their start and stop at INFO otherwise: ~550 lines

// Recorded by scripts/record-histories.ts on the commit named in each file name.
const dir = path.join(__dirname, 'histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.history.pb'));

test('there are recorded histories to replay', () => {
  expect(files.length).toBeGreaterThanOrEqual(3);
});

test.each(files)('%s replays with the current workflow code', async (file) => {
  const history = temporal.api.history.v1.History.decode(readFileSync(path.join(dir, file)));
  expect(history.events?.length).toBeGreaterThan(10);
  await Worker.runReplayHistory({ workflowBundle: { codePath: process.env.NETPULSE_TEST_BUNDLE! } }, history, file);
});

test('the fixtures cover a continue-as-new inside a pass, a runPass update and a retried activity', () => {
  const events = files.flatMap((file) => temporal.api.history.v1.History.decode(readFileSync(path.join(dir, file))).events ?? []);
  const type = temporal.api.enums.v1.EventType;
  expect(events.some((e) => e.eventType === type.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW)).toBe(true);
  expect(events.some((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name === 'runPass')).toBe(true);
  expect(events.some((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1)).toBe(true);
});
