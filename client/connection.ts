// One place that builds the Temporal client for the CLI, scripts and benchmarks.
import { Client, Connection, isGrpcServiceError } from '@temporalio/client';
import { config } from '../config';

export async function connectClient(address = config.temporalAddress): Promise<Client> {
  const connection = await Connection.connect({ ...config.temporalSecurity, address, connectTimeout: '5 seconds' }).catch((error: Error) => {
    throw new CliError(`cannot reach Temporal at ${address} (${error.message}); start it with: bash scripts/server.sh start`);
  });
  return new Client({ connection, namespace: config.namespace });
}

/** An error meant for the person at the terminal: printed without a stack, exit code attached. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

/** gRPC codes of a server that is away (UNKNOWN, DEADLINE_EXCEEDED, UNAVAILABLE), not of a request it refused. */
const SERVER_AWAY = new Set([2, 4, 14]);

function serverAway(error: unknown): boolean {
  for (let e: unknown = error; e; e = (e as { cause?: unknown }).cause) {
    if (isGrpcServiceError(e) && SERVER_AWAY.has(e.code)) return true;
  }
  return false;
}

/**
 * Waits for a workflow's result through Temporal server restarts: while the server is away the
 * client says so and keeps waiting (up to `patienceMs` of outage), since the workflow goes on
 * once the server is back.
 */
export async function resultThroughRestarts<T>(result: () => Promise<T>, patienceMs = 10 * 60_000): Promise<T> {
  let awaySince: number | undefined;
  for (;;) {
    try {
      return await result();
    } catch (error) {
      if (!serverAway(error)) throw error;
      awaySince ??= Date.now();
      if (Date.now() - awaySince > patienceMs) throw new CliError(`Temporal has been unreachable for ${Math.round(patienceMs / 60_000)} minutes; the workflow goes on once it is back (netpulse status)`);
      console.error(`  … Temporal is unreachable (${(error as Error).message.split('\n')[0]}); waiting for it to come back`);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
}
