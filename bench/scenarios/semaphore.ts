/**
 * `semaphore`: the semaphore engine as coordinosaur clients drive it, over mosquitto on loopback.
 * The hub runs as a child process (`pushfleet hub --mqtt-url`, as in production), the clients
 * in this process publish raw coordinosaur messages (QoS 0, like paho's default): each client
 * loops register → wait for go → finished on its own uid. A channel's limit is set with
 * `concurrency/set`, as any client could.
 */
import type { MqttClient } from 'mqtt';
import { connectMqtt } from '../../src/shared/mqtt-connection.js';
import { Cleanup } from '../../test/support/cleanup.js';
import { startMosquitto } from '../../test/support/mosquitto.js';
import { progress, startHubProcess } from '../support/processes.js';
import { percentile, round, type Figures, type Scenario } from '../scenario.js';

type Level = { name: string; max: number; clients: number; cycles: number };

const LEVELS: Level[] = [
  // One client: every grant is uncontended, so latency is pure engine + broker round trip.
  { name: 'max 1, 1 client', max: 1, clients: 1, cycles: 1_000 },
  // Ten clients on one slot: each finished hands the slot to a waiter (the seed's 2 grants/s case).
  { name: 'max 1, 10 clients', max: 1, clients: 10, cycles: 1_000 },
  { name: 'max 50, 50 clients', max: 50, clients: 50, cycles: 1_000 },
  // More clients than slots: grants come from the queue as slots free.
  { name: 'max 50, 200 clients', max: 50, clients: 200, cycles: 1_000 },
];
const WARMUP_CYCLES = 200;
const GIVE_UP_MS = 60_000;

/** One coordinosaur client cycling on its own uid; resolves with each cycle's register→go latency. */
async function cycle(client: MqttClient, channel: string, uid: string, count: () => boolean): Promise<number[]> {
  const go = `coordinosaur/${channel}/go/${uid}`;
  await client.subscribeAsync(go, { qos: 0 });
  const latencies: number[] = [];
  let granted: () => void = () => undefined;
  // An empty go is the hub clearing the retained go of the cycle that just finished.
  const onMessage = (topic: string, payload: Buffer) => topic === go && payload.length > 0 && granted();
  client.on('message', onMessage);
  while (count()) {
    const started = performance.now();
    const waitGo = new Promise<void>((resolve) => (granted = resolve));
    client.publish(`coordinosaur/${channel}/register`, JSON.stringify({ uid, timeout: 60 }), { qos: 0 });
    await waitGo;
    latencies.push(performance.now() - started);
    client.publish(`coordinosaur/${channel}/finished`, uid, { qos: 0 });
  }
  client.off('message', onMessage);
  return latencies;
}

/** Runs `cycles` register→go→finished cycles spread over the level's clients. */
async function runLevel(clients: MqttClient[], level: Level, channel: string, cycles: number): Promise<{ seconds: number; latencies: number[] }> {
  let left = cycles;
  const take = () => left-- > 0;
  const started = performance.now();
  const all = Promise.all(clients.slice(0, level.clients).map((c, i) => cycle(c, channel, `c${i}`, take)));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${level.name}: no progress within ${GIVE_UP_MS} ms`)), GIVE_UP_MS)));
  const latencies = (await Promise.race([all, timeout])).flat();
  clearTimeout(timer);
  return { seconds: (performance.now() - started) / 1000, latencies };
}

async function measure(level: Level): Promise<Figures> {
  const cleanup = new Cleanup();
  try {
    const broker = await startMosquitto();
    cleanup.defer(() => broker.stop());
    await startHubProcess(cleanup, { mqttUrl: broker.url });
    const clients = await Promise.all(Array.from({ length: level.clients }, () => connectMqtt({ url: broker.url, keepalive: 30 })));
    cleanup.defer(() => Promise.all(clients.map((c) => c.endAsync(true))));
    const channel = `bench-${level.max}-${level.clients}`;
    for (const ch of [channel, `${channel}-warmup`]) await clients[0]!.publishAsync(`coordinosaur/${ch}/concurrency/set`, String(level.max), { qos: 1 });
    // Warm up V8 and SQLite on another channel so the measured one starts empty.
    await runLevel(clients, level, `${channel}-warmup`, WARMUP_CYCLES);
    progress(`${level.name}: ${level.cycles} cycles`);
    const { seconds, latencies } = await runLevel(clients, level, channel, level.cycles);
    return {
      'grants/s': round(level.cycles / seconds, 0),
      'register→go p50 (ms)': round(percentile(latencies, 50), 2),
      'register→go p99 (ms)': round(percentile(latencies, 99), 2),
      'seconds for all cycles': round(seconds, 2),
    };
  } finally {
    await cleanup.run();
  }
}

export const semaphoreScenarios: Scenario[] = LEVELS.map((level) => ({
  name: `semaphore ${level.name} (1,000 register→go→finished cycles, mosquitto)`,
  run: () => measure(level),
}));
