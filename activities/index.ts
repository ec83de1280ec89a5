// Every activity the worker registers, one module per layer, bound to the worker's lake.
import { config } from '../config';
import { lakeFromEnv } from '../lake/catalog';
import { bronzeActivities } from './bronze';
import type { LakeDeps } from './context';
import { controlActivities, type TemporalDeps } from './control';
import { goldActivities } from './gold';
import { maintenanceActivities } from './maintenance';
import { readActivities } from './read';
import { silverActivities } from './silver';
import { throttleActivities, type ThrottleDeps } from './throttle';
import { writeLandingBatch } from './landing';

export type WorkerDeps = LakeDeps & TemporalDeps & ThrottleDeps;

export const defaultDeps = (): WorkerDeps => ({
  lake: lakeFromEnv(),
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
    ...maintenanceActivities(deps),
    ...readActivities(deps),
    ...controlActivities(deps),
    ...throttleActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
