// Activities that talk to Temporal itself: starting or signalling checkpoint-owning workflows.
import { Context } from '@temporalio/activity';
import { Client, Connection } from '@temporalio/client';
import { config } from '../config';
import type { PassRequest, PassTarget } from '../rules/pass';

export interface TemporalDeps {
  temporalAddress: string;
  namespace: string;
}

/** A client to the worker's Temporal server, connected on first use. */
export function lazyClient(deps: TemporalDeps): () => Promise<Client> {
  let client: Promise<Client> | undefined;
  return () =>
    (client ??= Connection.connect({ ...config.temporalSecurity, address: deps.temporalAddress }).then((connection) => new Client({ connection, namespace: deps.namespace })));
}

export function controlActivities(deps: TemporalDeps) {
  const getClient = lazyClient(deps);

  /** signalWithStart: starts each owner workflow if it is not running, then asks it for a pass. */
  async function requestPasses({ targets, replyTo }: { targets: PassTarget[]; replyTo: string }): Promise<string[]> {
    const c = await getClient();
    const { taskQueue } = Context.current().info;
    await Promise.all(targets.map((target) =>
      c.workflow.signalWithStart(target.workflowType, {
        taskQueue,
        workflowId: target.workflowId,
        args: [target.input],
        signal: 'requestPass',
        searchAttributes: { NetpulseLayer: [target.layer], NetpulseSource: [target.source] },
        staticSummary: `${target.layer} checkpoint owner for ${target.source}`,
        memo: { layer: target.layer, source: target.source },
        signalArgs: [{ requestId: target.requestId, replyTo, config: target.config } satisfies PassRequest],
      })));
    return targets.map((t) => t.workflowId);
  }

  return { requestPasses };
}
