// The worker's enforcement adapter, chosen by its configuration: dry run unless told otherwise.
import { enforcementSettingsSchema, type EnforcementSettings } from '../../rules/throttle';
import { describeIssues } from '../../rules/validate';
import type { EnforcementAdapter } from './adapter';
import { dryRunAdapter } from './dryrun';
import { tcAdapter } from './tc';
import { webhookAdapter } from './webhook';

/**
 * NETPULSE_THROTTLE_ADAPTER: dryrun (default), tc (NETPULSE_TC_DEVICE, NETPULSE_TC_NETNS,
 * NETPULSE_TC_ROOT_RATE_MBIT) or webhook (NETPULSE_THROTTLE_WEBHOOK_URL,
 * NETPULSE_THROTTLE_WEBHOOK_TOKEN_FILE, NETPULSE_THROTTLE_WEBHOOK_TIMEOUT_MS).
 */
export function enforcementFromEnv(env: NodeJS.ProcessEnv = process.env): EnforcementSettings {
  const number = (v: string | undefined) => (v === undefined || v === '' ? undefined : Number(v));
  const given = {
    dryrun: { adapter: 'dryrun' },
    tc: { adapter: 'tc', device: env.NETPULSE_TC_DEVICE, netns: env.NETPULSE_TC_NETNS || undefined, rootRateMbit: number(env.NETPULSE_TC_ROOT_RATE_MBIT) },
    webhook: {
      adapter: 'webhook', url: env.NETPULSE_THROTTLE_WEBHOOK_URL, tokenFile: env.NETPULSE_THROTTLE_WEBHOOK_TOKEN_FILE || undefined,
      timeoutMs: number(env.NETPULSE_THROTTLE_WEBHOOK_TIMEOUT_MS),
    },
  }[env.NETPULSE_THROTTLE_ADAPTER ?? 'dryrun'];
  if (!given) throw new Error(`NETPULSE_THROTTLE_ADAPTER: "${env.NETPULSE_THROTTLE_ADAPTER}" is not one of dryrun, tc, webhook`);
  const parsed = enforcementSettingsSchema.safeParse(JSON.parse(JSON.stringify(given)));
  if (!parsed.success) throw new Error(`the ${given.adapter} enforcement adapter's settings: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

export function adapterFor(settings: EnforcementSettings): EnforcementAdapter {
  switch (settings.adapter) {
    case 'dryrun': return dryRunAdapter();
    case 'tc': return tcAdapter(settings);
    case 'webhook': return webhookAdapter(settings);
  }
}
