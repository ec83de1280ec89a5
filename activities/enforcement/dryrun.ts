// The default adapter: nothing touches the network. Proposals, decisions and the audit work as
// with a real adapter, and each audit row says nothing was installed.
import type { EnforcementAdapter } from './adapter';

export function dryRunAdapter(): EnforcementAdapter {
  return {
    name: 'dryrun',
    apply: async (target) => `dry run: nothing installed (would limit to ${target.limitMbps} Mbps; set NETPULSE_THROTTLE_ADAPTER to enforce)`,
    lift: async () => 'dry run: nothing to remove',
    inForce: async () => undefined,
  };
}
