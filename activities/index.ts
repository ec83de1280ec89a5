// Every activity the worker registers, one module per layer, bound to the worker's lake.
import { config } from '../config';
import { bronzeActivities, type LakeDeps } from './bronze';
import { controlActivities, type TemporalDeps } from './control';
import { goldActivities } from './gold';
import { readActivities } from './read';
import { silverActivities } from './silver';
import { writeLandingBatch } from './landing';

export type WorkerDeps = LakeDeps & TemporalDeps;

export const defaultDeps = (): WorkerDeps => ({
  lakeFile: config.lakeFile,
  landingDir: config.landingDir,
  temporalAddress: config.temporalAddress,
  namespace: config.namespace,
});

export function createActivities(deps: WorkerDeps = defaultDeps()) {
  return {
    writeLandingBatch,
    ...bronzeActivities(deps),
    ...silverActivities(deps),
    ...goldActivities(deps),
    ...readActivities(deps),
    ...controlActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
