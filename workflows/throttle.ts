// Throttling heavy clients. The controller reads gold on a timer and tells each client's throttle
// workflow what it sees; the throttle workflow (one per client, `throttle-<ip>-<device>`, a new
// run per episode) walks proposed → approved → applied → in force → lifted, or ends withdrawn or
// rejected, writing every transition to the audit exactly once. Deterministic code only.
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import * as wf from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { AuditRow } from '../activities/throttle';
import {
  ACCEPTS, decisionSchema, FINAL_STATES, throttleControllerInputSchema, throttlePolicySchema,
  type ClientEvidence, type Decision, type Observation, type ThrottleControllerInput, type ThrottlePolicy, type ThrottlePolicyInput, type ThrottleState,
} from '../rules/throttle';
import { describeIssues, parseOrFail } from '../rules/validate';
import { activityRetry } from './checkpoint-owner';

/** Short lake calls: an attempt lost with its worker is tried again after 30 s. */
const lake = wf.proxyActivities<Activities>({ startToCloseTimeout: '30 seconds', retry: activityRetry() });
/** The adapter's calls: a refusal (4xx, a bad target) is not retried; anything else backs off for ~4 minutes, then the throttle fails visibly. */
const network = wf.proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { ...activityRetry(), nonRetryableErrorTypes: [...activityRetry().nonRetryableErrorTypes!, 'EnforcementRefused', 'InvalidTarget'] },
});

// ---- the throttle of one client ---------------------------------------------------------------

export interface ThrottleTransition { seq: number; at: string; transition: string; state: ThrottleState; actor: string; reason: string; adapterResult?: string }

export interface ThrottleView {
  client: string;
  ip: string;
  dispositivo: string;
  servidor?: string;
  state: ThrottleState | 'starting';
  limitMbps?: number;
  episode: string;
  /** The evidence gold gave at the proposal, and its latest. */
  proposedEvidence?: ClientEvidence;
  latestEvidence?: ClientEvidence;
  heavy: boolean;
  /** Since when gold has not listed the client as heavy (while it does not). */
  notHeavySince?: string;
  appliedAt?: string;
  expiresAt?: string;
  adapter?: string;
  transitions: ThrottleTransition[];
}

export const observeSignal = wf.defineSignal<[Observation & { policy: ThrottlePolicy }]>('observe');
/** An operator's decision that answers when it is in the audit (CLI, dashboard). */
export const decideUpdate = wf.defineUpdate<ThrottleView, [Decision]>('decide');
/** The same decision as a signal, for the Web UI's "Send a signal": {"action":"approve","actor":"ana","reason":"…"}. */
export const decideSignal = wf.defineSignal<[unknown]>('decide');
export const throttleQuery = wf.defineQuery<ThrottleView>('throttle');

interface ThrottleCarried {
  view: ThrottleView;
  seq: number;
  policy: ThrottlePolicy;
  decisions: Decision[];
}

export interface ThrottleInput {
  policy?: ThrottlePolicyInput;
  carried?: ThrottleCarried;
}

const iso = (ms: number) => new Date(ms).toISOString();
const minutes = (m: number) => m * 60_000;

/** A decision waiting for the workflow: recorded, or dropped with the reason (the state moved on). */
interface Pending { decision: Decision; recorded?: boolean; dropped?: string }

function invalid(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: 'InvalidInput', nonRetryable: true, message });
}

/** Why a state does not take a decision, or undefined when it does. */
function refusal(state: ThrottleState | 'starting', action: Decision['action']): string | undefined {
  const accepted = state === 'starting' ? [] : ACCEPTS[state];
  return accepted.includes(action) ? undefined : `the throttle is ${state}: it accepts ${accepted.length ? accepted.join(' or ') : 'no decision'}, not ${action}`;
}

export async function throttleWorkflow(input: ThrottleInput = {}): Promise<ThrottleView> {
  const info = wf.workflowInfo();
  let policy = throttlePolicySchema.parse(input.carried?.policy ?? input.policy ?? {});
  let seq = input.carried?.seq ?? 0;
  const pending: Pending[] = (input.carried?.decisions ?? []).map((decision) => ({ decision }));
  let latest: Observation | undefined;
  let view: ThrottleView | undefined = input.carried?.view;

  wf.setHandler(observeSignal, (observation) => {
    latest = observation;
    policy = throttlePolicySchema.parse(observation.policy);
    if (!view) return;
    view.heavy = observation.heavy;
    if (observation.evidence) view.latestEvidence = observation.evidence;
    if (observation.heavy) view.notHeavySince = undefined;
    else view.notHeavySince ??= iso(Date.now());
  });
  const parseDecision = (given: unknown): Decision => {
    const parsed = decisionSchema.safeParse(given);
    if (!parsed.success) throw invalid(`decision: ${describeIssues(parsed.error)}`);
    const refused = refusal(view?.state ?? 'starting', parsed.data.action);
    if (refused) throw invalid(refused);
    return parsed.data;
  };
  wf.setHandler(decideUpdate, async (given) => {
    const mine: Pending = { decision: decisionSchema.parse(given) };
    pending.push(mine);
    await wf.condition(() => mine.recorded === true || mine.dropped !== undefined);
    if (mine.dropped) throw invalid(mine.dropped);
    return view!;
  }, { validator: (given) => void parseDecision(given) });
  wf.setHandler(decideSignal, (given) => {
    // A signal cannot answer: one that does not fit the state is dropped (the update says why).
    try {
      pending.push({ decision: parseDecision(given) });
    } catch {
      // not a decision this state takes
    }
  });
  wf.setHandler(throttleQuery, () => view ?? { client: latest?.client ?? '', ip: latest?.ip ?? '', dispositivo: latest?.dispositivo ?? '', state: 'starting', episode: '', heavy: false, transitions: [] });

  async function record(on: ThrottleView, transition: string, state: ThrottleState, actor: string, reason: string, extra: Partial<AuditRow> = {}): Promise<void> {
    const at = iso(Date.now());
    seq++;
    await lake.recordThrottle({ at, workflowId: info.workflowId, episode: on.episode, seq, client: on.client, ip: on.ip, dispositivo: on.dispositivo,
      servidor: on.servidor, transition, state, actor, reason, limitMbps: on.limitMbps, ...extra });
    on.state = state;
    on.transitions.push({ seq, at, transition, state, actor, reason, ...(extra.adapterResult && { adapterResult: extra.adapterResult }) });
    wf.setCurrentDetails(`**${state}** since ${at}: ${reason}`);
  }

  /** A new episode, or the open one the audit has for this client (a workflow terminated or reset mid-throttle). */
  async function startEpisode(first: Observation): Promise<ThrottleView> {
    const open = await lake.readThrottleAudit({ client: first.client });
    const base = { client: first.client, ip: first.ip, dispositivo: first.dispositivo, heavy: first.heavy, latestEvidence: first.evidence, transitions: [] as ThrottleTransition[] };
    if (open && !FINAL_STATES.includes(open.state)) {
      seq = open.seq;
      const applied = open.state === 'in force' || open.state === 'failed';
      return { ...base, servidor: open.servidor, state: open.state, limitMbps: open.limitMbps, episode: open.episode,
        proposedEvidence: open.evidence as ClientEvidence | undefined, adapter: open.adapter,
        ...(applied && { appliedAt: open.at, expiresAt: iso(Date.parse(open.at) + policy.expireAfterHours * 3_600_000) }) };
    }
    if (open && first.auditState) {
      // News for a throttle that ended after the controller read the audit (a lift racing the
      // observation started this run): nothing to do, and no new proposal.
      return { ...base, servidor: open.servidor, state: open.state, limitMbps: open.limitMbps, episode: open.episode };
    }
    const started: ThrottleView = { ...base, servidor: first.evidence?.servidor, state: 'starting', limitMbps: first.limitMbps,
      episode: info.firstExecutionRunId, proposedEvidence: first.evidence };
    view = started;
    const e = first.evidence;
    const why = e ? `heavy: a ${e.planMbps} Mbps plan, ${e.timesMedian}× the median ${e.serverMedianMbps} Mbps of ${e.servidor} (at ${e.serverUtilisationPct} %); limit to ${first.limitMbps} Mbps` : 'heavy';
    await record(started, 'proposed', 'proposed', 'netpulse', why, { evidence: e });
    return started;
  }

  if (!view) {
    await wf.condition(() => latest !== undefined);
    view = await startEpisode(latest!);
  }
  const v = view;
  const target = () => ({ client: v.client, ip: v.ip, limitMbps: v.limitMbps ?? 0 });
  const notHeavyMs = () => (v.notHeavySince ? Date.now() - Date.parse(v.notHeavySince) : 0);
  const errorOf = (error: unknown) => (error instanceof ActivityFailure && error.cause ? error.cause.message : (error as Error).message);
  // The adapter sees the audit row its call leads to: a retried call carries the same key.
  const idempotencyKey = () => `${v.episode}:${seq + 1}`;

  /** The next decision this state takes; those it no longer takes are dropped (their update fails, saying why). */
  function nextDecision(): Pending | undefined {
    for (let p = pending.shift(); p; p = pending.shift()) {
      const refused = refusal(v.state, p.decision.action);
      if (!refused) return p;
      p.dropped = refused;
    }
    return undefined;
  }
  async function decided(p: Pending, transition: string, state: ThrottleState, fallback: string, extra: Partial<AuditRow> = {}): Promise<void> {
    await record(v, transition, state, p.decision.actor, p.decision.reason || fallback, extra);
    p.recorded = true;
  }
  async function lift(reason: string, p?: Pending): Promise<void> {
    const { adapter, result } = await network.liftThrottle({ client: { client: v.client, ip: v.ip }, idempotencyKey: idempotencyKey() });
    if (p) await decided(p, 'lifted', 'lifted', reason, { adapter, adapterResult: result });
    else await record(v, 'lifted', 'lifted', 'netpulse', reason, { adapter, adapterResult: result });
  }
  /** Waits for a decision, a new observation, or `ms`. */
  async function waitForNews(ms: number): Promise<void> {
    const observed = latest;
    const news = () => pending.length > 0 || latest !== observed;
    await (ms === Infinity ? wf.condition(news) : wf.condition(news, Math.max(1, ms)));
  }

  while (!FINAL_STATES.includes(v.state as ThrottleState)) {
    const p = nextDecision();
    switch (v.state) {
      case 'proposed':
        if (p?.decision.action === 'reject') await decided(p, 'rejected', 'rejected', 'rejected by the operator');
        else if (p) await decided(p, 'approved', 'approved', 'approved by the operator');
        else if (latest?.autoApprove && latest.heavy) await record(v, 'approved', 'approved', 'policy', latest.autoApprove);
        else if (v.notHeavySince && notHeavyMs() >= minutes(policy.withdrawAfterMinutes)) {
          await record(v, 'withdrawn', 'withdrawn', 'netpulse', `not heavy since ${v.notHeavySince} (withdrawAfterMinutes ${policy.withdrawAfterMinutes})`);
        } else {
          if (wf.workflowInfo().continueAsNewSuggested && wf.allHandlersFinished()) {
            await wf.continueAsNew<typeof throttleWorkflow>({ carried: { view: v, seq, policy, decisions: pending.map((q) => q.decision) } });
          }
          await waitForNews(v.notHeavySince ? minutes(policy.withdrawAfterMinutes) - notHeavyMs() : Infinity);
        }
        break;
      case 'approved':
        // A lift before the limit is applied still asks the adapter: an earlier attempt may have installed it.
        if (p) { await lift('lifted before it was in force', p); break; }
        try {
          const { adapter, result } = await network.applyThrottle({ target: target(), idempotencyKey: idempotencyKey() });
          v.adapter = adapter;
          v.appliedAt = iso(Date.now());
          v.expiresAt = iso(Date.now() + policy.expireAfterHours * 3_600_000);
          await record(v, 'applied', 'applied', 'netpulse', `limit of ${v.limitMbps} Mbps installed`, { adapter, adapterResult: result });
        } catch (error) {
          await record(v, 'failed', 'failed', 'netpulse', `the adapter could not apply the limit: ${errorOf(error)}`);
        }
        break;
      case 'applied': {
        if (p) { await lift('lifted by the operator', p); break; }
        const check = await network.verifyThrottle({ target: target() });
        if (check.verified) await record(v, 'verified', 'in force', 'netpulse', `read back: ${check.detail}`, { adapter: check.adapter, adapterResult: check.detail });
        else await record(v, 'failed', 'failed', 'netpulse', `read back does not match ${v.limitMbps} Mbps: ${check.detail}`, { adapter: check.adapter, adapterResult: check.detail });
        break;
      }
      case 'in force':
      case 'failed': {
        const expiresAt = Date.parse(v.expiresAt ?? iso(Date.now() + policy.expireAfterHours * 3_600_000));
        const untilLift = v.notHeavySince ? minutes(policy.liftAfterMinutes) - notHeavyMs() : Infinity;
        if (p) await lift('lifted by the operator', p);
        else if (Date.now() >= expiresAt) await lift(`expired: applied at ${v.appliedAt ?? '?'}, expireAfterHours ${policy.expireAfterHours}`);
        else if (untilLift <= 0) await lift(`not heavy since ${v.notHeavySince} (liftAfterMinutes ${policy.liftAfterMinutes})`);
        else {
          if (wf.workflowInfo().continueAsNewSuggested && wf.allHandlersFinished()) {
            await wf.continueAsNew<typeof throttleWorkflow>({ carried: { view: v, seq, policy, decisions: pending.map((q) => q.decision) } });
          }
          await waitForNews(Math.min(expiresAt - Date.now(), untilLift));
        }
        break;
      }
      default:
        throw ApplicationFailure.nonRetryable(`unexpected throttle state ${v.state}`);
    }
  }
  for (const p of pending) p.dropped = refusal(v.state, p.decision.action);
  // Updates waiting for their transition answer before the run ends.
  await wf.condition(wf.allHandlersFinished);
  return v;
}

// ---- the controller ---------------------------------------------------------------------------

export const policyQuery = wf.defineQuery<ThrottlePolicy>('policy');
/** Sets the policy (merged into the current one); answers with the policy in force. */
export const setPolicyUpdate = wf.defineUpdate<ThrottlePolicy, [ThrottlePolicyInput]>('setPolicy');
/** Reads gold now instead of at the next tick. */
export const observeNowSignal = wf.defineSignal('observeNow');
export interface ControllerStatus { policy: ThrottlePolicy; observeSeconds: number; lastObservation?: { at: string; observed: number; proposals: number; autoApproved: number }; lastError?: string }
export const controllerStatusQuery = wf.defineQuery<ControllerStatus>('status');

export async function throttleControllerWorkflow(input: ThrottleControllerInput & { carried?: Omit<ControllerStatus, 'observeSeconds'> } = {}): Promise<void> {
  const { carried, ...given } = input;
  const cfg = parseOrFail(throttleControllerInputSchema, given, 'throttle controller');
  const status: ControllerStatus = { policy: carried?.policy ?? cfg.policy, observeSeconds: cfg.observeSeconds, lastObservation: carried?.lastObservation };
  let wake = false;
  wf.setHandler(policyQuery, () => status.policy);
  wf.setHandler(controllerStatusQuery, () => status);
  wf.setHandler(observeNowSignal, () => { wake = true; });
  wf.setHandler(setPolicyUpdate, (change) => {
    status.policy = throttlePolicySchema.parse({ ...status.policy, ...change });
    wake = true;
    return status.policy;
  }, {
    validator: (change) => {
      const parsed = throttlePolicySchema.partial().safeParse(change);
      if (!parsed.success) throw ApplicationFailure.create({ type: 'InvalidInput', nonRetryable: true, message: `policy: ${describeIssues(parsed.error)}` });
    },
  });
  for (;;) {
    wake = false;
    try {
      const result = await lake.observeHeavyClients({ policy: status.policy });
      status.lastObservation = { at: iso(Date.now()), ...result };
      status.lastError = undefined;
    } catch (error) {
      // The lake may be away for longer than the retries: the next tick tries again.
      status.lastError = (error instanceof ActivityFailure && error.cause ? error.cause : (error as Error)).message;
    }
    await wf.condition(() => wake, cfg.observeSeconds * 1000);
    if (wf.workflowInfo().continueAsNewSuggested && wf.allHandlersFinished()) {
      await wf.continueAsNew<typeof throttleControllerWorkflow>({ ...given, carried: { policy: status.policy, lastObservation: status.lastObservation } });
    }
  }
}
