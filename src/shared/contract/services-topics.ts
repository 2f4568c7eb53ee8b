import { AgentServiceState, LeaseGrant, LeaseRenewal } from './services-messages.js';
import { SERVICES_REQUEST, ServiceOutput, ServicePlacement, ServicesRequest } from './services-engine-messages.js';
import type { Rule, TopicSpec } from './topic-table.js';
import { anything, json, orEmpty, topicSpec } from './topic-spec.js';

const operator: Rule = { role: 'operator' };
const ownAgent: Rule = { role: 'agent', own: 'agent' };
const NOBODY: readonly Rule[] = [];

/**
 * The services engine's topics, for the topic table. Leases and placements make an agent start
 * or stop a copy, so only the hub sends them, signed; an agent renews and reports only under its
 * own id, and the engine checks that the payload names the same agent.
 */
export function servicesTopics(): TopicSpec[] {
  const spec = topicSpec;
  return [
    spec('services.request', SERVICES_REQUEST, { about: 'add, rm, ls, show, logs, servers', payload: json(ServicesRequest), publish: [operator], subscribe: NOBODY }),
    spec('services.reply', 'pushfleet/services-replies/{request}', { about: "the hub's answer to a services request", payload: anything, publish: NOBODY, subscribe: [operator] }),
    spec('services.placement', 'pushfleet/services/{service}/placement', {
      about: 'who runs a service now (a lower generation elsewhere stops at once)',
      payload: orEmpty(json(ServicePlacement)),
      publish: NOBODY,
      subscribe: [operator, { role: 'agent' }],
      signed: true,
      retained: true,
    }),
    spec('services.state', 'pushfleet/services/{service}/state', { about: "a service's status, placement and history", payload: anything, publish: NOBODY, subscribe: [operator], retained: true }),
    spec('agent.services-renew', 'pushfleet/agents/{agent}/services/renew', { about: "renew the agent's services lease (its services heartbeat)", payload: json(LeaseRenewal), publish: [ownAgent], subscribe: NOBODY }),
    spec('agent.services-lease', 'pushfleet/agents/{agent}/services/lease', { about: 'the lease: every service the agent is to run, until when', payload: json(LeaseGrant), publish: NOBODY, subscribe: [ownAgent], signed: true, replaySafe: true }),
    spec('agent.service-state', 'pushfleet/agents/{agent}/services/{service}/state', {
      about: "one service copy's state on the agent running it",
      payload: orEmpty(json(AgentServiceState)),
      publish: [ownAgent],
      subscribe: [operator],
      retained: true,
    }),
    spec('agent.service-output', 'pushfleet/agents/{agent}/services/{service}/output', {
      about: "the tail of one service copy's output",
      payload: orEmpty(json(ServiceOutput)),
      publish: [ownAgent],
      subscribe: [operator],
      retained: true,
    }),
  ];
}
