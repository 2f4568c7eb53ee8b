import type { Engine } from '../engines/engine.js';
import type { JobsEngine } from '../engines/jobs/jobs-engine.js';
import type { RolloutsEngine } from '../engines/rollouts/rollouts-engine.js';
import type { SemaphoreEngine } from '../engines/semaphore/semaphore-engine.js';
import type { ServicesEngine } from '../engines/services/services-engine.js';
import type { FleetView } from '../views/fleet-view.js';
import type { MetricSources } from './hub-metrics.js';

/** The engines that run, found by name (the jobs and services engines are loaded only when on, so no instanceof). */
export function metricSources(engines: readonly Engine[], fleet: FleetView): MetricSources {
  const named = <E extends Engine>(name: string) => engines.find((e) => e.name === name) as E | undefined;
  const rollouts = named<RolloutsEngine>('rollouts');
  const semaphore = named<SemaphoreEngine>('semaphore');
  const jobs = named<JobsEngine>('jobs');
  const services = named<ServicesEngine>('services');
  return {
    agents: () => fleet.labelled(),
    ...(rollouts && { rollouts: () => rollouts.statusCounts() }),
    ...(semaphore && { semaphore: () => semaphore.occupancy() }),
    ...(jobs && { jobRuns: () => jobs.runCounts() }),
    ...(services && { services: () => services.statusCounts() }),
  };
}
