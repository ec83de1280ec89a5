// Lake maintenance, run by a Temporal Schedule (scripts/up.sh creates it) or by hand.
// Deterministic code only: the work is one heartbeating activity.
import * as wf from '@temporalio/workflow';
import type { Activities } from '../activities';
import { maintenanceInputSchema, type MaintenanceInput, type MaintenanceReport } from '../rules/maintenance';
import { parseOrFail } from '../rules/validate';
import { activityRetry } from './checkpoint-owner';

const { maintainLake } = wf.proxyActivities<Activities>({
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '1 minute',
  retry: activityRetry(5),
});

export async function maintenanceWorkflow(input: MaintenanceInput = {}): Promise<MaintenanceReport> {
  const cfg = parseOrFail(maintenanceInputSchema, input, 'maintenance');
  return maintainLake(cfg);
}
