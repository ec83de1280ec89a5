// What a pass reports, the same shape for every layer (bronze sources, silver, gold).

/** What one pass of any layer did; bronze counts files, silver and gold count rows. */
export interface PassSummary {
  layer: 'bronze' | 'silver' | 'gold';
  /** The source (bronze) or stream (silver, gold) that ran the pass. */
  source: string;
  batches: number;
  files: number;
  rows: number;
  quarantined: number;
  fromVersion: number;
  toVersion: number;
  startedAt: string;
  finishedAt: string;
  /**
   * Bronze: time spent in the pass's activities (planning and batches); finishedAt − startedAt
   * minus this is orchestration, the benchmarks' Temporal overhead. Not measured for silver and gold.
   */
  activityMs?: number;
  /** Work left after the pass: landing files waiting (bronze). */
  lag?: number;
  /** Layer-specific counts (duplicates dropped, tables refreshed, ...). */
  details?: Record<string, number>;
  /** Set when the owner has a parked batch: the pass did not run (or stopped) there. */
  parked?: { batchId?: string; reason: string; errorType?: string; since: string };
  /** Bronze: the landing folder does not exist (a one-shot run fails on it; a continuous one says so and goes on). */
  landingMissing?: string;
  /** Set when the owner refused the request: it runs with other options (the difference). */
  refused?: string;
  /** Set by the requester when the owner did not answer within the pass timeout. */
  noAnswer?: string;
}

/** A request for a pass, as an owner receives it (signal requestPass). */
export interface PassRequest {
  requestId: string;
  /** Workflow to signal with passDone when the pass that serves this request ends. */
  replyTo?: string;
  /** The configuration the requester expects the owner to run with (ownerConfigKey); refused if it differs. */
  config?: string;
}

/** An owner to ask for a pass, and how to start it when it is not running (activity requestPasses). */
export interface PassTarget {
  requestId: string;
  workflowId: string;
  workflowType: string;
  /** Input the workflow starts with if it is not running; a running one keeps its own. */
  input: unknown;
  /** Web UI: search attributes (registered by scripts/server.sh) and a one-line summary. */
  layer: 'bronze' | 'silver' | 'gold';
  source: string;
  /** The configuration the requester expects (the owner refuses the request if it runs with another). */
  config?: string;
}

/** An owner's configuration as one comparable string (zod output keeps the schema's key order). */
export function ownerConfigKey(config: unknown): string {
  return JSON.stringify(config);
}
