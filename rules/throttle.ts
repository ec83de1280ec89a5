// Throttling heavy clients: the operator's policy, the controller's settings, what the controller
// tells a client's throttle workflow, and what an operator may decide. Shared by the workflows,
// the activities, the CLI and the dashboard's API.
import { z } from 'zod';

/** How clients are proposed, approved without an operator (when `auto`), and lifted. */
export const throttlePolicySchema = z
  .object({
    /** Approve proposals without an operator when the conditions below hold. Off: every throttle waits for an operator. */
    auto: z.boolean().default(false),
    /** Auto-approve a client heavy for at least this long (since its proposal)… */
    minHeavyMinutes: z.number().min(0).max(10_080).default(10),
    /** …on a server at or above this utilisation… */
    minServerUtilisationPct: z.number().min(0).max(1000).default(80),
    /** …with at most this many clients throttled per server (the heaviest first). */
    maxPerServer: z.number().int().min(0).max(1000).default(3),
    /** Proposals waiting for a decision per server, at most: its heaviest clients first (gold lists up to 50 per server; a person reads a few). */
    proposePerServer: z.number().int().min(0).max(1000).default(3),
    /** Do not propose a client again for this long after its last throttle ended (lifted, withdrawn, rejected). */
    quietAfterEndMinutes: z.number().min(0).max(10_080).default(60),
    /** Withdraw a proposal whose client has not been heavy for this long. */
    withdrawAfterMinutes: z.number().min(0).max(10_080).default(10),
    /** Lift a throttle whose client has not been heavy for this long. */
    liftAfterMinutes: z.number().min(0).max(10_080).default(30),
    /** Lift every throttle this long after it was applied, heavy or not. */
    expireAfterHours: z.number().min(0.01).max(8_760).default(24),
  })
  .strict();
export type ThrottlePolicy = z.output<typeof throttlePolicySchema>;
export type ThrottlePolicyInput = z.input<typeof throttlePolicySchema>;

export const throttleControllerInputSchema = z
  .object({
    policy: throttlePolicySchema.default(throttlePolicySchema.parse({})),
    /** How often the controller reads gold and tells the throttle workflows what it sees. */
    observeSeconds: z.number().min(1).max(86_400).default(60),
  })
  .strict();
export type ThrottleControllerInput = z.input<typeof throttleControllerInputSchema>;

export const THROTTLE_CONTROLLER_ID = 'throttle-controller';

/** Who decided (an operator's name, 'policy', 'netpulse') and why; kept in the audit. */
const actorSchema = z.string().regex(/^[\p{L}\p{N} ._@-]{1,64}$/u, 'a name of 1 to 64 letters, digits, spaces or . _ @ -');
export const reasonSchema = z.string().max(500).regex(/^[^\p{Cc}]*$/u, 'no control characters');

export const OPERATOR_ACTIONS = ['approve', 'reject', 'lift'] as const;
export type OperatorAction = (typeof OPERATOR_ACTIONS)[number];

/** An operator's decision, from the CLI, the dashboard, or a signal sent in the Web UI. */
export const decisionSchema = z
  .object({ action: z.enum(OPERATOR_ACTIONS), actor: actorSchema, reason: reasonSchema.default('') })
  .strict();
export type Decision = z.output<typeof decisionSchema>;

/** What gold says about a client now: the proposal's evidence, and whether it is still heavy. */
export interface ClientEvidence {
  asOf: string;
  servidor: string;
  planMbps: number;
  serverMedianMbps: number;
  timesMedian: number;
  serverUtilisationPct: number;
  heavyOnServer: number;
}

/** The controller's word to one client's workflow, at each observation. */
export interface Observation {
  client: string;
  ip: string;
  dispositivo: string;
  /** Listed by gold as heavy now. */
  heavy: boolean;
  limitMbps: number;
  evidence?: ClientEvidence;
  /** Set when the policy approves the client now (the reason, in words). */
  autoApprove?: string;
  /** The throttle's state in the audit when the controller read it (none: a new proposal). */
  auditState?: string;
}

export const THROTTLE_STATES = ['proposed', 'approved', 'applied', 'in force', 'failed', 'lifted', 'withdrawn', 'rejected'] as const;
export type ThrottleState = (typeof THROTTLE_STATES)[number];
/** States a throttle workflow ends in. */
export const FINAL_STATES: readonly ThrottleState[] = ['lifted', 'withdrawn', 'rejected'];

/** Which decisions each state accepts. */
export const ACCEPTS: Record<ThrottleState, readonly OperatorAction[]> = {
  proposed: ['approve', 'reject'],
  approved: ['lift'],
  applied: ['lift'],
  'in force': ['lift'],
  failed: ['lift'],
  lifted: [],
  withdrawn: [],
  rejected: [],
};

/** A client as the lake keys devices, `<ip>/<dispositivo>`. */
export const clientKey = (ip: string, dispositivo: string) => `${ip}/${dispositivo}`;

export const clientKeySchema = z.string().regex(/^(\d{1,3}\.){3}\d{1,3}\/(Computador|Celular)$/, 'a client as <ip>/<device>, e.g. 10.0.1.180/Computador');

/** `10.0.1.180/Computador` → its parts, or an error saying what a client looks like. */
export function parseClient(text: string): { ip: string; dispositivo: string } {
  const client = clientKeySchema.parse(text);
  const [ip, dispositivo] = client.split('/');
  return { ip, dispositivo };
}

/** The throttle workflow of a client: one per client, a new run per episode. */
export const throttleWorkflowId = (ip: string, dispositivo: string) => `throttle-${ip}-${dispositivo}`;

/** Which enforcement adapter the worker uses, and its settings (worker configuration, from its environment). */
export const enforcementSettingsSchema = z.discriminatedUnion('adapter', [
  z.object({ adapter: z.literal('dryrun') }).strict(),
  z.object({
    adapter: z.literal('tc'),
    /** The gateway interface toward the clients: their traffic leaves through it. */
    device: z.string(),
    /** The network namespace the interface is in, if not the worker's. */
    netns: z.string().optional(),
    /** The rate of everything not throttled (HTB's default class). */
    rootRateMbit: z.number().int().min(1).max(1_000_000).default(10_000),
  }).strict(),
  z.object({
    adapter: z.literal('webhook'),
    /** The network controller's base URL: PUT/GET/DELETE <url>/throttles/<client>. */
    url: z.url({ protocol: /^https?$/ }),
    /** Bearer token for the controller, read from a file (never in the environment's listing or a log). */
    tokenFile: z.string().optional(),
    timeoutMs: z.number().int().min(100).max(120_000).default(5_000),
  }).strict(),
]);
export type EnforcementSettings = z.output<typeof enforcementSettingsSchema>;
