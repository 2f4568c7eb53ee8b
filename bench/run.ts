/**
 * `npm run bench [name-filter] [-- scenario args]`: runs every scenario (or those whose name
 * contains the filter) and prints each one's figures; arguments after the filter go to each
 * scenario (`npm run bench fleet -- --agents 1000`). Speed is measured here, never asserted in tests.
 */
import type { Scenario } from './scenario.js';
import { webhookScenarios } from './scenarios/webhook.js';
import { deployLatencyScenarios } from './scenarios/deploy-latency.js';
import { semaphoreScenarios } from './scenarios/semaphore.js';
import { orchestratorScenarios } from './scenarios/orchestrator.js';
import { rolloutsScenarios } from './scenarios/rollouts.js';
import { signingScenarios } from './scenarios/signing.js';
import { jobsScenarios } from './scenarios/jobs.js';
import { servicesScenarios } from './scenarios/services.js';
import { agentIdleScenarios } from './scenarios/agent-idle.js';
import { fleetScenarios } from './scenarios/fleet.js';
import { dashboardScenarios } from './scenarios/dashboard.js';

const registry: Scenario[] = [...webhookScenarios, ...deployLatencyScenarios, ...semaphoreScenarios, ...orchestratorScenarios, ...rolloutsScenarios, ...signingScenarios, ...jobsScenarios, ...servicesScenarios, ...agentIdleScenarios, ...fleetScenarios, ...dashboardScenarios];

// A first argument that is a flag is a scenario's: no filter then.
const [first, ...rest] = process.argv.slice(2);
const filter = first?.startsWith('--') ? undefined : first;
const args = filter === undefined && first !== undefined ? [first, ...rest] : rest;
const selected = registry.filter((s) => !filter || s.name.includes(filter));
if (selected.length === 0) {
  process.stderr.write(`no scenario matches "${filter}"; scenarios: ${registry.map((s) => s.name).join(', ')}\n`);
  process.exit(2);
}
for (const scenario of selected) {
  process.stdout.write(`\n## ${scenario.name}\n`);
  const figures = await scenario.run(args);
  for (const [key, value] of Object.entries(figures)) process.stdout.write(`  ${key.padEnd(40)} ${value}\n`);
}
