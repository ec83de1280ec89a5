// Runtime settings read from the environment, in one place, for the worker and the CLI.
import path from 'node:path';

const root = path.resolve(__dirname, __dirname.endsWith(`${path.sep}dist`) ? '..' : '.');

export const config = {
  projectRoot: root,
  temporalAddress: process.env.TEMPORAL_ADDRESS ?? `127.0.0.1:${process.env.TEMPORAL_PORT ?? '7233'}`,
  namespace: process.env.TEMPORAL_NAMESPACE ?? 'default',
  taskQueue: process.env.NETPULSE_TASK_QUEUE ?? 'netpulse',
  uiUrl: `http://localhost:${process.env.TEMPORAL_UI_PORT ?? '8233'}`,
  dataDir: path.resolve(process.env.NETPULSE_DATA_DIR ?? path.join(root, 'data')),
  get landingDir(): string {
    return path.resolve(process.env.NETPULSE_LANDING_DIR ?? path.join(this.dataDir, 'landing'));
  },
  get lakeFile(): string {
    return path.resolve(process.env.NETPULSE_LAKE_FILE ?? path.join(this.dataDir, 'netpulse.duckdb'));
  },
};
