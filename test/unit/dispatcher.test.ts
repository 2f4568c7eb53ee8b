import { EventEmitter } from 'node:events';
import type { MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { Dispatcher } from '../../src/hub/engines/dispatcher.js';
import type { Engine } from '../../src/hub/engines/engine.js';
import { createLogger } from '../../src/shared/logger.js';

/** The few MqttClient members the dispatcher uses, recording every call in order. */
function fakeMqtt(connected = true) {
  const calls: string[] = [];
  const client = Object.assign(new EventEmitter(), {
    connected,
    subscribeAsync: async (filters: string[]) => void calls.push(`subscribe ${filters.join(' ')}`),
    unsubscribeAsync: async (filters: string[]) => void calls.push(`unsubscribe ${filters.join(' ')} (${client.listenerCount('message')} listener)`),
  });
  return { client, mqtt: client as unknown as MqttClient, calls };
}

function engine(name: string, subscriptions: string[], calls: string[]): Engine {
  return {
    name,
    subscriptions,
    start: async () => void calls.push(`start ${name}`),
    stop: async () => void calls.push(`stop ${name}`),
    handle: (topic) => void calls.push(`${name} got ${topic}`),
  };
}

const log = createLogger('test', 'silent');

describe('Dispatcher', () => {
  it('routes messages to the engines whose filters match, and unsubscribes before stopping them', async () => {
    const { client, mqtt, calls } = fakeMqtt();
    const d = new Dispatcher(mqtt, [engine('a', ['x/#'], calls), engine('b', ['x/#', 'y/+'], calls)], log);
    await d.start();
    client.emit('message', 'y/1', Buffer.from(''));
    await d.stop();
    client.emit('message', 'x/after-stop', Buffer.from(''));
    expect(calls).toEqual(['start a', 'start b', 'subscribe x/# y/+', 'b got y/1', 'unsubscribe x/# y/+ (1 listener)', 'stop b', 'stop a']);
  });

  it('does not wait on an unsubscribe when the broker is gone', async () => {
    const { mqtt, calls } = fakeMqtt(false);
    const d = new Dispatcher(mqtt, [engine('a', ['x/#'], calls)], log);
    await d.start();
    await d.stop();
    expect(calls).toEqual(['start a', 'subscribe x/#', 'stop a']);
  });

  it('follows an engine whose filters change at run time: new ones subscribed, ones no engine serves any more unsubscribed', async () => {
    const { client, mqtt, calls } = fakeMqtt();
    let filters = ['t/a', 'shared/#'];
    let resubscribe: () => Promise<void> = async () => undefined;
    const dynamic: Engine = {
      ...engine('jobs', [], calls),
      get subscriptions() {
        return filters;
      },
      onSubscriptionsChange: (fn) => void (resubscribe = fn),
    };
    const d = new Dispatcher(mqtt, [engine('a', ['shared/#'], calls), dynamic], log);
    await d.start();
    client.emit('message', 't/a', Buffer.from(''));
    filters = ['t/b'];
    await resubscribe();
    client.emit('message', 't/a', Buffer.from(''));
    client.emit('message', 't/b', Buffer.from(''));
    expect(calls).toEqual(['start a', 'start jobs', 'subscribe shared/# t/a', 'jobs got t/a', 'subscribe t/b', 'unsubscribe t/a (1 listener)', 'jobs got t/b']);
  });
});
