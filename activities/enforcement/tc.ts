// placeholder until the tc adapter lands (branch wip-tc)
import type { EnforcementAdapter } from './adapter';
export function tcAdapter(_options: { device: string; netns?: string; rootRateMbit?: number }): EnforcementAdapter {
  throw new Error('tc adapter not built yet');
}
