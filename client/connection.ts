// One place that builds the Temporal client for the CLI, scripts and benchmarks.
import { Client, Connection } from '@temporalio/client';
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
