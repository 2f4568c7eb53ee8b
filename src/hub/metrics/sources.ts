import type { Engine } from '../engines/engine.js';
import { engineNamed } from '../engines/registry.js';
import type { JobsEngine } from '../engines/jobs/jobs-engine.js';
import type { RolloutsEngine } from '../engines/rollouts/rollouts-engine.js';
import type { SemaphoreEngine } from '../engines/semaphore/semaphore-engine.js';
import type { ServicesEngine } from '../engines/services/services-engine.js';
import type { FleetView } from '../views/fleet-view.js';
import type { MetricSources } from './hub-metrics.js';

/** The engines that run, found by name (the jobs and services engines are loaded only when on, so no instanceof). */
export function metricSources(engines: readonly Engine[], fleet: FleetView): MetricSources {
  const rollouts = engineNamed<RolloutsEngine>(engines, 'rollouts');
  const semaphore = engineNamed<SemaphoreEngine>(engines, 'semaphore');
  const jobs = engineNamed<JobsEngine>(engines, 'jobs');
  const services = engineNamed<ServicesEngine>(engines, 'services');
  return {
    agents: () => fleet.labelled(),
    ...(rollouts && { rollouts: () => rollouts.statusCounts() }),
    ...(semaphore && { semaphore: () => semaphore.occupancy() }),
    ...(jobs && { jobRuns: () => jobs.runCounts() }),
    ...(services && { services: () => services.statusCounts() }),
  };
}
