// What an enforcement adapter does: install, read back and remove a per-client bandwidth limit on
// the network. Every call is idempotent: applying twice installs one rule, lifting what is not
// there succeeds. The throttle workflow calls them through activities and audits each result.

/** A client as the lake keys devices: its address and its device type. */
export interface ThrottleClient {
  /** `<ip>/<dispositivo>`, e.g. `10.0.1.180/Computador`. */
  client: string;
  ip: string;
}

export interface ThrottleTarget extends ThrottleClient {
  limitMbps: number;
}

/** A limit the network has in force for a client, as the adapter read it back. */
export interface InForce {
  limitMbps: number;
  /** What was read, for the audit (e.g. `class 1:2b4 htb rate 100Mbit ceil 100Mbit, filter dst 10.0.1.180/32`). */
  detail: string;
}

export interface EnforcementAdapter {
  readonly name: 'dryrun' | 'tc' | 'webhook';
  /** Installs (or replaces) the client's limit; returns what was done, for the audit. */
  apply(target: ThrottleTarget, idempotencyKey: string): Promise<string>;
  /** Removes the client's limit if there is one; returns what was done, for the audit. */
  lift(client: ThrottleClient, idempotencyKey: string): Promise<string>;
  /** The client's limit in force now, or undefined if none. */
  inForce(client: ThrottleClient): Promise<InForce | undefined>;
}
