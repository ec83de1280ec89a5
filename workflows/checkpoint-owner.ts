// The loop every checkpoint-owning workflow shares (bronze sources, silver, gold): passes are
// asked for by signal (with a reply-to workflow) or update, served one at a time, their
// activities retried here (visibly), and the workflow continues as new between passes when its
// history grows. Deterministic code only; asking an owner for a pass is requests.ts.
import { ActivityFailure, ApplicationFailure, defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import * as wf from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { PassRequest, PassSummary } from '../rules/pass';
import { passDoneSignal, requestPassSignal, runPassUpdate } from './requests';

/** Bad input and a checkpoint that disagrees with the lake: never retried. */
const NON_RETRYABLE = ['InvalidInput', 'CheckpointAheadOfLake', 'CheckpointBehindLake', 'BatchBehindLake'];

/**
 * Every layer's activities: back off to a minute, then give up after `maximumAttempts` (the owner
 * parks the batch); bad input and a checkpoint that disagrees with the lake are not retried.
 */
export function activityRetry(maximumAttempts: number = DEFAULT_MAX_ATTEMPTS): wf.RetryPolicy {
  return {
    initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts, nonRetryableErrorTypes: NON_RETRYABLE,
  };
}
/** The pause before attempt `attempt + 1`: activityRetry's backoff (1 s, 2 s, 4 s … 1 min). */
const backoffMs = (attempt: number) => Math.min(1000 * 2 ** (attempt - 1), 60_000);
/** About four minutes of retries (1, 2, 4 … 60 s) before a batch is parked. */
export const DEFAULT_MAX_ATTEMPTS = 10;
const planningOptions = (maximumAttempts?: number): wf.ActivityOptions => ({ startToCloseTimeout: '5 minutes', retry: activityRetry(maximumAttempts) });

/** Workflows started before planning ran as local activities replay the old commands. */
export const LOCAL_PLANNING_PATCH = 'local-planning-activities';

/**
 * Planning and checkpoint reads are short, read-only and safe to repeat: local activities,
 * run by the worker without a server round trip each (the batch itself stays a normal,
 * heartbeating activity that another worker can retry).
 */
export function planningActivities(maximumAttempts?: number) {
  const options = planningOptions(maximumAttempts);
  return wf.patched(LOCAL_PLANNING_PATCH) ? wf.proxyLocalActivities<Activities>(options) : wf.proxyActivities<Activities>(options);
}

/** The settings two configuration keys disagree on, as dotted paths, each owner's → requested. */
function configDifference(ownerKey: string, requestedKey: string): string {
  const flatten = (value: unknown, prefix = ''): [string, string][] =>
    value !== null && typeof value === 'object' && !Array.isArray(value)
      ? Object.entries(value).flatMap(([key, v]) => flatten(v, prefix ? `${prefix}.${key}` : key))
      : [[prefix, JSON.stringify(value)]];
  const owner = new Map(flatten(JSON.parse(ownerKey)));
  const requested = new Map(flatten(JSON.parse(requestedKey)));
  return [...new Set([...owner.keys(), ...requested.keys()])]
    .filter((key) => owner.get(key) !== requested.get(key))
    .map((key) => `${key}: ${owner.get(key) ?? 'unset'} → ${requested.get(key) ?? 'unset'}`)
    .join('; ');
}

/** A batch its owner gave up on after its retries: passes stop until `retryParked`. */
export interface Parked {
  batchId?: string;
  reason: string;
  errorType?: string;
  since: string;
}

/** A pass cut by continue-as-new: who waits for it, what it did so far, where it stands. */
export interface PassInProgress<P> {
  serving: PassRequest[];
  summary: PassSummary;
  progress: P;
}

/** What an owner carries into its next run besides its own checkpoint. */
export interface OwnerCarry<P> {
  lastPass?: PassSummary;
  queued?: PassRequest[];
  parked?: Parked;
  inPass?: PassInProgress<P>;
}

export const retryParkedSignal = wf.defineSignal('retryParked');
/** Web UI / visibility: `NetpulseParked = true` lists every owner with a parked batch. */
export const PARKED_ATTRIBUTE = defineSearchAttributeKey('NetpulseParked', SearchAttributeType.BOOL);
/** Web UI / visibility: `NetpulseRetrying = true` lists every owner whose activity is failing and being retried now. */
export const RETRYING_ATTRIBUTE = defineSearchAttributeKey('NetpulseRetrying', SearchAttributeType.BOOL);

/** An owner's activity that failed and is being retried: which, the attempt that runs next, the last error, since when. */
export interface Retrying {
  step: string;
  batchId?: string;
  /** The attempt that runs next (2 after the first failure). */
  attempt: number;
  maxAttempts: number;
  lastError: string;
  errorType?: string;
  /** When the first attempt of this step failed. */
  since: string;
  lastFailedAt: string;
  nextAttemptAt: string;
}

/** Owners started before this retry their activities in the workflow (visible); older runs replay Temporal's retries. */
export const OWNER_RETRIES_PATCH = 'owner-retries-activities';
/** One attempt per activity call: the owner retries (see CheckpointOwner.run). */
const ONE_ATTEMPT = { retry: { maximumAttempts: 1 } };

/** Whether a failed attempt is worth another: not bad input, a disagreeing checkpoint or a cancellation. */
function retryable(error: unknown): boolean {
  if (wf.isCancellation(error)) return false;
  const cause = error instanceof ActivityFailure && error.cause ? error.cause : error;
  if (cause instanceof ApplicationFailure) return !cause.nonRetryable && !NON_RETRYABLE.includes(cause.type ?? '');
  return true; // timeouts (a worker gone), server errors
}

/** The failure's own message (an activity failure wraps it). */
function failureOf(error: unknown): { message: string; type?: string } {
  const cause = error instanceof ActivityFailure && error.cause ? error.cause : (error as Error);
  return { message: cause.message, type: cause instanceof ApplicationFailure ? (cause.type ?? undefined) : cause.name };
}

export interface OwnerLoop<P> extends OwnerCarry<P> {
  runOnStart: boolean;
  /** Attempts of a failing activity before its batch is parked. */
  maxAttempts: number;
  /** ownerConfigKey of the configuration this owner runs with. */
  configKey: string;
  /**
   * A requested configuration as this owner's schema reads it (its defaults filled in), so a
   * request recorded before a setting was added compares equal; throws if it is not valid.
   */
  canonicalConfig: (config: unknown) => string;
  newSummary: () => PassSummary;
  /** One pass; fills `summary` as it goes, resuming from `progress` after a continue-as-new. */
  runPass: (summary: PassSummary, progress?: P) => Promise<void>;
  /** Continue as new once it returns true (between passes, or between batches inside one). */
  shouldContinueAsNew: () => boolean;
  continueAsNew: (carry: OwnerCarry<P>) => Promise<never>;
  /** Writes the parking to the lake's event log (best effort). */
  logParked: (parked: Parked) => Promise<void>;
}

export class CheckpointOwner<P = unknown> {
  readonly requests: PassRequest[] = [];
  passRunning = false;
  parked?: Parked;
  lastPass?: PassSummary;
  /** The batch the pass is running now, named when it gets parked. */
  currentBatch?: string;
  /** Set while an activity of the pass fails and is retried. */
  retrying?: Retrying;
  private serving: PassRequest[] = [];
  private readonly finished = new Map<string, PassSummary>();

  constructor(private readonly loop: OwnerLoop<P>) {
    this.requests.push(...(loop.queued ?? []));
    this.parked = loop.parked;
    this.lastPass = loop.lastPass;
    if (loop.runOnStart) this.requests.push({ requestId: 'on-start' });
    wf.setHandler(requestPassSignal, (request) => void this.requests.push(request));
    wf.setHandler(retryParkedSignal, () => {
      if (!this.parked) return;
      this.parked = undefined;
      wf.upsertSearchAttributes([{ key: PARKED_ATTRIBUTE, value: null }]);
      this.requests.push({ requestId: `retry-parked-${wf.uuid4()}` });
    });
    wf.setHandler(runPassUpdate, () => this.passAndWait());
  }

  /** Asks for a pass and waits for its summary (an update's handler). */
  async passAndWait(): Promise<PassSummary> {
    const requestId = `update-${wf.uuid4()}`;
    this.requests.push({ requestId });
    await wf.condition(() => this.finished.has(requestId));
    const summary = this.finished.get(requestId)!;
    this.finished.delete(requestId);
    return summary;
  }

  /**
   * Runs one activity call of a pass (`call` gets the attempt's number and the options to schedule
   * it with). A failed attempt is retried here, with activityRetry's backoff and up to maxAttempts,
   * rather than by the server: so the owner knows, while it retries, which attempt runs next, the
   * last error and since when, and shows it (its query, the Web UI's current details and the
   * NetpulseRetrying search attribute), planning activities (local, invisible to the server) too.
   * What still fails after the attempts parks the batch (attempt()). Runs started before this
   * replay the server's retries.
   */
  async run<R>(what: { step: string; batchId?: string }, call: (attempt: number, options: typeof ONE_ATTEMPT | Record<string, never>) => Promise<R>): Promise<R> {
    if (!wf.patched(OWNER_RETRIES_PATCH)) return call(1, {});
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await call(attempt, ONE_ATTEMPT);
        if (this.retrying) this.showRetrying(undefined);
        return result;
      } catch (error) {
        if (!retryable(error) || attempt >= this.loop.maxAttempts) {
          if (this.retrying) this.showRetrying(undefined);
          throw error;
        }
        const failure = failureOf(error);
        const now = Date.now();
        const sameStep = this.retrying?.step === what.step && this.retrying.batchId === what.batchId;
        this.showRetrying({
          ...what, attempt: attempt + 1, maxAttempts: this.loop.maxAttempts, lastError: failure.message, errorType: failure.type,
          since: sameStep ? this.retrying!.since : new Date(now).toISOString(), lastFailedAt: new Date(now).toISOString(),
          nextAttemptAt: new Date(now + backoffMs(attempt)).toISOString(),
        });
        wf.log.info('activity failed; retrying', { step: what.step, batchId: what.batchId, attempt, error: failure.message });
        await wf.sleep(backoffMs(attempt));
      }
    }
  }

  private showRetrying(retrying: Retrying | undefined): void {
    this.retrying = retrying;
    wf.upsertSearchAttributes([{ key: RETRYING_ATTRIBUTE, value: retrying ? true : null }]);
    wf.setCurrentDetails(retrying ? retryingText(retrying) : '');
  }

  async serve(): Promise<never> {
    let resumed = this.loop.inPass;
    for (;;) {
      let summary: PassSummary;
      let progress: P | undefined;
      if (resumed) {
        ({ serving: this.serving, summary, progress } = resumed);
        resumed = undefined;
      } else {
        await wf.condition(() => this.requests.length > 0);
        this.serving = await this.refuseOtherConfigs(this.requests.splice(0));
        if (this.serving.length === 0) continue;
        summary = this.loop.newSummary();
      }
      this.passRunning = true;
      if (this.parked) summary.parked = this.parked;
      else await this.attempt(summary, progress);
      this.passRunning = false;
      this.lastPass = summary;
      await this.reply(this.serving, summary);
      this.serving = [];
      if (this.requests.length === 0 && this.continueAsNewDue()) {
        await wf.condition(wf.allHandlersFinished);
        if (this.requests.length === 0) await this.loop.continueAsNew({ queued: [], parked: this.parked, lastPass: this.lastPass });
      }
    }
  }

  /**
   * A request made with other options than the owner runs with is answered at once with the
   * difference, never served with the owner's options as if they were the ones asked for.
   */
  private async refuseOtherConfigs(requests: PassRequest[]): Promise<PassRequest[]> {
    const accepted: PassRequest[] = [];
    for (const request of requests) {
      let requested: string;
      try {
        requested = request.config === undefined ? this.loop.configKey : this.loop.canonicalConfig(JSON.parse(request.config));
      } catch (error) {
        await this.reply([request], { ...this.loop.newSummary(), refused: `the requested options are not valid: ${(error as Error).message}` });
        continue;
      }
      if (requested === this.loop.configKey) accepted.push(request);
      else {
        const id = wf.workflowInfo().workflowId;
        const refused = `${id} runs with other options (${configDifference(this.loop.configKey, requested)}). Ask with its options, or stop it `
          + `first with \`netpulse owners stop ${id}\`: the next pass starts it again with the new options, from the lake's checkpoint`;
        await this.reply([request], { ...this.loop.newSummary(), refused });
      }
    }
    return accepted;
  }

  /**
   * Between two batches of a pass: continue as new when due, carrying the pass. Not while an
   * update waits for this pass (its caller would lose the answer); the pass goes on instead.
   */
  async betweenBatches(summary: PassSummary, progress: P): Promise<void> {
    if (!this.continueAsNewDue() || !wf.allHandlersFinished()) return;
    await this.loop.continueAsNew({ queued: [...this.requests], parked: this.parked, lastPass: this.lastPass, inPass: { serving: this.serving, summary, progress } });
  }

  private continueAsNewDue(): boolean {
    return this.loop.shouldContinueAsNew() || wf.workflowInfo().continueAsNewSuggested;
  }

  /** Runs the pass; a failure that outlived its retries parks the batch and ends the pass. */
  private async attempt(summary: PassSummary, progress?: P): Promise<void> {
    try {
      await this.loop.runPass(summary, progress);
    } catch (error) {
      if (error instanceof wf.ContinueAsNew || wf.isCancellation(error)) throw error;
      const cause = error instanceof ActivityFailure && error.cause ? error.cause : (error as Error);
      this.parked = {
        batchId: this.currentBatch, reason: cause.message, since: new Date(Date.now()).toISOString(),
        errorType: cause instanceof ApplicationFailure ? (cause.type ?? undefined) : cause.name,
      };
      summary.parked = this.parked;
      wf.log.error('batch parked: its activity failed after its retries; passes wait for retryParked', { ...this.parked });
      wf.upsertSearchAttributes([{ key: PARKED_ATTRIBUTE, value: true }]);
      await this.loop.logParked(this.parked).catch((logError) => wf.log.warn('parking not logged', { error: String(logError) }));
    } finally {
      this.currentBatch = undefined;
    }
    summary.finishedAt = new Date(Date.now()).toISOString();
  }

  private async reply(serving: PassRequest[], summary: PassSummary): Promise<void> {
    for (const request of serving) {
      if (!request.replyTo) {
        this.finished.set(request.requestId, summary);
        continue;
      }
      try {
        await wf.getExternalWorkflowHandle(request.replyTo).signal(passDoneSignal, { ...summary, requestId: request.requestId });
      } catch (error) {
        wf.log.warn('requester is gone; pass result not delivered', { replyTo: request.replyTo, error: String(error) });
      }
    }
  }
}

/** A retrying activity in one line: for the Web UI's current details, the CLI and the dashboard. */
export function retryingText(r: Retrying): string {
  return `retrying ${r.step}${r.batchId ? ` ${r.batchId}` : ''}: attempt ${r.attempt} of ${r.maxAttempts} at ${r.nextAttemptAt}, `
    + `failing since ${r.since}; last error (${r.lastFailedAt}): ${r.lastError}`;
}

