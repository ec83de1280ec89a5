// Activities that talk to Temporal itself: starting or signalling the per-source workflows.
import { Context } from '@temporalio/activity';
import { Client, Connection } from '@temporalio/client';
import { bronzeWorkflowId, type IngestOptions, type Source } from '../rules/bronze';
import type { PassRequest } from '../workflows/bronze';

export interface TemporalDeps {
  temporalAddress: string;
  namespace: string;
}

export interface PassRequests {
  requests: { source: Source; requestId: string }[];
  replyTo: string;
  options: Partial<IngestOptions>;
  landingPath?: string;
}

export function controlActivities(deps: TemporalDeps) {
  let client: Promise<Client> | undefined;
  const getClient = () =>
    (client ??= Connection.connect({ address: deps.temporalAddress }).then((connection) => new Client({ connection, namespace: deps.namespace })));

  /** signalWithStart: starts a source's checkpoint workflow if it is not running, then asks it for a pass. */
  async function requestBronzePasses({ requests, replyTo, options, landingPath }: PassRequests): Promise<string[]> {
    const c = await getClient();
    const { taskQueue } = Context.current().info;
    const ids: string[] = [];
    for (const { source, requestId } of requests) {
      const handle = await c.workflow.signalWithStart('bronzeSourceWorkflow', {
        taskQueue,
        workflowId: bronzeWorkflowId(source),
        args: [{ source, options, landingPath }],
        signal: 'requestPass',
        signalArgs: [{ requestId, replyTo } satisfies PassRequest],
      });
      ids.push(handle.workflowId);
    }
    return ids;
  }

  return { requestBronzePasses };
}
