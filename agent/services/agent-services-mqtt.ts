import type { MqttClient } from 'mqtt';
import { agentServiceOutputTopic, agentServiceStateTopic, servicePlacementTopic, ServicePlacement, serviceLeaseTopic, serviceRenewTopic } from '../../src/shared/contract/services-engine-messages.js';
import type { AgentServiceState } from '../../src/shared/contract/services-messages.js';
import type { Logger } from '../../src/shared/logger.js';
import { decode } from '../../src/shared/messages.js';
import { topicMatches } from '../../src/shared/topic-match.js';
import type { ActionsConfig } from '../action-config.js';
import type { SignedInbox } from '../signed-inbox.js';
import { startAgentServices, type AgentServices } from './agent-services.js';
import type { AgentServicesConfig } from './services-config.js';

export type AgentServicesOnMqtt = {
  offer: AgentServices['offer'];
  /** Subscribes to this agent's lease and to the placements (again on every connect), and publishes each copy's state again. */
  subscribe(): Promise<void>;
  stop(): Promise<void>;
};

/** Last states kept for republishing after a reconnect: every copy here, and the latest ended ones. */
const STATES_KEPT = 1000;

/**
 * The services part on the agent's MQTT client: signed leases on
 * `pushfleet/agents/<id>/services/lease` and signed retained placements on
 * `pushfleet/services/+/placement` go through the signed inbox; renewals (QoS 1, not retained)
 * and each copy's state and output tail (retained) go out under the agent's own topics.
 */
export async function startAgentServicesOnMqtt(
  agent: { id: string; stateDir: string; actions: ActionsConfig; services: AgentServicesConfig },
  mqtt: MqttClient,
  inbox: Pick<SignedInbox, 'open'>,
  changed: () => void,
  log: Logger,
): Promise<AgentServicesOnMqtt> {
  const states = new Map<string, AgentServiceState>();
  const publish = (topic: string, payload: string, retain: boolean) =>
    mqtt.publish(topic, payload, { qos: 1, retain }, (err) => err && log.warn({ topic, err: err.message }, 'not published'));
  const publishState = (s: AgentServiceState) => publish(agentServiceStateTopic(agent.id, s.name), JSON.stringify(s), true);
  const services = await startAgentServices(
    agent,
    {
      // Offline, a renewal is dropped rather than queued: sent late it could only hold a lease already run out.
      renew: (r) => mqtt.connected && publish(serviceRenewTopic(agent.id), JSON.stringify(r), false),
      report(s) {
        states.delete(s.name);
        states.set(s.name, s);
        if (states.size > STATES_KEPT) states.delete(states.keys().next().value!);
        publishState(s);
      },
      output: (o) => publish(agentServiceOutputTopic(agent.id, o.name), JSON.stringify(o), true),
      changed,
    },
    log,
  );

  const leaseTopic = serviceLeaseTopic(agent.id);
  const placements = servicePlacementTopic('+');
  const onPlacement = (topic: string, payload: Buffer) => {
    if (payload.length === 0) return; // cleared: the service was removed after its cancel
    const name = topic.split('/')[2]!;
    const placement = decode(ServicePlacement, payload);
    if (!placement.ok || placement.value.name !== name) return void log.warn({ topic, error: placement.ok ? 'the name of the payload is not that of the topic' : placement.error }, 'ignored malformed service placement');
    if (placement.value.agent !== agent.id) services.heard(name, placement.value.generation);
  };
  const onMessage = (topic: string, raw: Buffer) => {
    if (topic === leaseTopic) return inbox.open(topic, raw, (payload) => services.grant(payload));
    // Every agent hears every placement: only those of services it runs or ran are worth verifying.
    if (topicMatches(placements, topic) && services.knows(topic.split('/')[2]!)) inbox.open(topic, raw, (payload) => onPlacement(topic, payload));
  };
  mqtt.on('message', onMessage);

  return {
    offer: () => services.offer(),
    async subscribe() {
      await mqtt.subscribeAsync([leaseTopic, placements], { qos: 1 });
      // A broker that lost its retained messages (restarted without persistence) gets them again.
      for (const s of states.values()) publishState(s);
    },
    async stop() {
      mqtt.off('message', onMessage);
      await services.stop();
    },
  };
}
