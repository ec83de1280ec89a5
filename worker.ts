// The netpulse worker: one task queue, every workflow and activity, graceful shutdown.
import { NativeConnection, Runtime, Worker, DefaultLogger, type WorkerOptions } from '@temporalio/worker';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createActivities, defaultDeps, type WorkerDeps } from './activities';
import { enforcementFromEnv } from './activities/enforcement';
import { config } from './config';
import { closeLakes, redactCatalog } from './lake/catalog';
import { closeAllInstances, duckdbThreads } from './lake/duckdb';
import { silverBatchQueue } from './rules/shards';

export type NetpulseWorkerOptions = Partial<Omit<WorkerOptions, 'connection'>> & {
  address?: string;
  connection?: NativeConnection;
  /** Lake file, landing root and Temporal address the activities use (default: config). */
  deps?: Partial<WorkerDeps>;
};

/**
 * The worker of the silver batch queue beside `taskQueue`'s (activities only): as many slots as
 * NETPULSE_SILVER_BATCHES_PER_WORKER, so shards' batches spread over workers (rules/shards.ts).
 */
export async function createSilverBatchWorker(options: NetpulseWorkerOptions & { taskQueue?: string } = {}): Promise<Worker> {
  const { address, connection: given, deps, taskQueue = config.taskQueue, shutdownGraceTime = '20 seconds' } = options;
  const connection = given ?? (await NativeConnection.connect({ ...config.temporalSecurity, address: address ?? config.temporalAddress }));
  return Worker.create({
    connection,
    namespace: config.namespace,
    taskQueue: silverBatchQueue(taskQueue),
    activities: createActivities({ ...defaultDeps(), ...(address && { temporalAddress: address }), ...deps }),
    maxConcurrentActivityTaskExecutions: config.silverBatchesPerWorker,
    shutdownGraceTime,
    shutdownForceTime: '40 seconds',
  });
}

/** Builds the worker; tests pass a prebuilt workflow bundle and their own task queue. */
export async function createNetpulseWorker(options: NetpulseWorkerOptions = {}): Promise<Worker> {
  const { address, connection: given, deps, ...workerOptions } = options;
  const connection = given ?? (await NativeConnection.connect({ ...config.temporalSecurity, address: address ?? config.temporalAddress }));
  // The build writes a prebuilt bundle next to the compiled worker; from sources, bundle now.
  const prebuilt = path.join(__dirname, 'workflow-bundle.js');
  const code = workerOptions.workflowBundle ? {}
    : existsSync(prebuilt) ? { workflowBundle: { codePath: prebuilt } }
    : { workflowsPath: require.resolve(path.join(__dirname, 'workflows')) };
  return Worker.create({
    connection,
    namespace: config.namespace,
    taskQueue: config.taskQueue,
    activities: createActivities({ ...defaultDeps(), ...(address && { temporalAddress: address }), ...deps }),
    // Activities write atomically; the grace time lets a running batch finish and report, and
    // past the force time the worker stops anyway (an activity stuck in a system call would
    // otherwise hold it in DRAINING forever; its batch is retried elsewhere, exactly once).
    shutdownGraceTime: '20 seconds',
    shutdownForceTime: '40 seconds',
    ...code,
    ...workerOptions,
  });
}

export async function runWorker(): Promise<void> {
  const metrics = process.env.NETPULSE_METRICS_ADDRESS;
  Runtime.install({
    logger: new DefaultLogger((process.env.NETPULSE_LOG_LEVEL as 'INFO') ?? 'INFO'),
    // Temporal's worker metrics (task latencies, activity and local activity execution time), for Prometheus.
    ...(metrics && { telemetryOptions: { metrics: { prometheus: { bindAddress: metrics } } } }),
  });
  // A misconfigured adapter stops the worker now, not at the first approved throttle; so do a bad
  // thread count, silver shard count or silver batches per worker, not at the first batch.
  const enforcement = enforcementFromEnv();
  duckdbThreads();
  void config.silverShards;
  void config.silverBatchesPerWorker;
  const worker = await createNetpulseWorker({ deps: { enforcement } });
  const silverBatches = await createSilverBatchWorker({ deps: { enforcement } });
  Runtime.instance().logger.info('netpulse worker started', {
    throttleAdapter: enforcement.adapter,
    taskQueue: config.taskQueue, address: config.temporalAddress, catalog: redactCatalog(config.catalog), catalogSchema: config.catalogSchema, data: config.dataPath, landing: config.landingDir,
  });
  // Worker.run() handles SIGINT/SIGTERM: stops polling, waits for running activities, then resolves.
  await Promise.all([worker.run(), silverBatches.run()]);
  await closeLakes();
  await closeAllInstances();
  Runtime.instance().logger.info('netpulse worker stopped');
}

if (require.main === module) {
  runWorker().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
