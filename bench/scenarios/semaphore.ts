/**
 * `semaphore`: the semaphore engine as coordinosaur clients drive it, over mosquitto on loopback
 * and over the hub's embedded aedes broker. The hub runs as a child process (`pushfleet hub`, as
 * in production), the clients in this process publish raw coordinosaur messages (QoS 0, like
 * paho's default): each client loops register → wait for go → finished on its own uid. A
 * channel's limit is set with `concurrency/set`, as any client could.
 *
 * Runs are timed, not counted: the clients cycle for a warm-up (past V8's optimisation and
 * SQLite's first pages), then for the measured window; only grants whose go arrived inside the
 * window count. BENCH_SEMAPHORE_SECONDS and BENCH_SEMAPHORE_WARMUP (seconds) shorten them while
 * profiling.
 */
import type { MqttClient } from 'mqtt';
import { connectMqtt } from '../../src/shared/mqtt-connection.js';
import { Cleanup } from '../../test/support/cleanup.js';
import { startMosquitto } from '../../test/support/mosquitto.js';
import { cpuSeconds, progress, startHubProcess } from '../support/processes.js';
import { percentile, round, type Figures, type Scenario } from '../scenario.js';

type Level = { name: string; max: number; clients: number };
type Broker = 'mosquitto' | 'aedes';

const LEVELS: Level[] = [
  // One client: every grant is uncontended, so latency is pure engine + broker round trip.
  { name: 'max 1, 1 client', max: 1, clients: 1 },
  // Ten clients on one slot: each finished hands the slot to a waiter (the seed's 2 grants/s case).
  { name: 'max 1, 10 clients', max: 1, clients: 10 },
  { name: 'max 50, 50 clients', max: 50, clients: 50 },
  // More clients than slots: grants come from the queue as slots free.
  { name: 'max 50, 200 clients', max: 50, clients: 200 },
];
const seconds = (name: string, fallback: number): number => {
  const value = Number(process.env[name] ?? fallback);
  if (!(value > 0)) throw new Error(`${name} must be a number of seconds > 0`);
  return value;
};
const MEASURE_S = seconds('BENCH_SEMAPHORE_SECONDS', 10);
const WARMUP_S = seconds('BENCH_SEMAPHORE_WARMUP', 5);
/** A cycle whose go takes longer than this means the hub stopped answering. */
const STALL_MS = 30_000;

/** When each go arrived and how long after its register: what one window of a run measured. */
type Sample = { at: number; latency: number };

/**
 * One coordinosaur client cycling on its own uid until `until`; records each grant. Rejects if a
 * go does not come within STALL_MS.
 */
async function cycle(client: MqttClient, channel: string, uid: string, until: number, samples: Sample[]): Promise<void> {
  const go = `coordinosaur/${channel}/go/${uid}`;
  await client.subscribeAsync(go, { qos: 0 });
  let granted: () => void = () => undefined;
  // An empty go is the hub clearing the retained go of the cycle that just finished.
  const onMessage = (topic: string, payload: Buffer) => topic === go && payload.length > 0 && granted();
  client.on('message', onMessage);
  try {
    while (performance.now() < until) {
      const started = performance.now();
      let timer: NodeJS.Timeout | undefined;
      const waitGo = new Promise<void>((resolve, reject) => {
        granted = resolve;
        timer = setTimeout(() => reject(new Error(`${channel}/${uid}: no go within ${STALL_MS} ms`)), STALL_MS);
      });
      client.publish(`coordinosaur/${channel}/register`, JSON.stringify({ uid, timeout: 60 }), { qos: 0 });
      await waitGo;
      clearTimeout(timer);
      const at = performance.now();
      samples.push({ at, latency: at - started });
      client.publish(`coordinosaur/${channel}/finished`, uid, { qos: 0 });
    }
  } finally {
    client.off('message', onMessage);
  }
}

async function measure(level: Level, broker: Broker): Promise<Figures> {
  const cleanup = new Cleanup();
  try {
    let mqttUrl: string | undefined;
    if (broker === 'mosquitto') {
      const mosquitto = await startMosquitto();
      cleanup.defer(() => mosquitto.stop());
      mqttUrl = mosquitto.url;
    }
    const hub = await startHubProcess(cleanup, { mqttUrl });
    const clients: MqttClient[] = [];
    cleanup.defer(() => Promise.all(clients.map((c) => c.endAsync(true))));
    // A few logins at a time: the embedded broker checks each password with scrypt, and 200 at
    // once would outlast the connect timeout on a loaded machine.
    while (clients.length < level.clients) {
      const batch = Math.min(20, level.clients - clients.length);
      clients.push(...(await Promise.all(Array.from({ length: batch }, () => connectMqtt({ url: hub.mqttUrl, keepalive: 30 })))));
    }
    const channel = `bench-${level.max}-${level.clients}`;
    await clients[0]!.publishAsync(`coordinosaur/${channel}/concurrency/set`, String(level.max), { qos: 1 });
    progress(`${level.name} over ${broker}: ${WARMUP_S} s warm-up, ${MEASURE_S} s measured`);
    const samples: Sample[] = [];
    const from = performance.now() + WARMUP_S * 1000;
    const to = from + MEASURE_S * 1000;
    // The hub's CPU is read at the window's edges; the clients run on through both.
    let cpuFrom = NaN;
    let cpuTo = NaN;
    let clientsFrom: NodeJS.CpuUsage | undefined;
    let clientsCpu = NaN;
    const at = (t: number, read: () => void) => new Promise<void>((resolve) => setTimeout(() => resolve(read()), t - performance.now()));
    const edges = Promise.all([
      at(from, () => {
        cpuFrom = cpuSeconds(hub.proc.pid);
        clientsFrom = process.cpuUsage();
      }),
      at(to, () => {
        cpuTo = cpuSeconds(hub.proc.pid);
        const used = process.cpuUsage(clientsFrom);
        clientsCpu = (used.user + used.system) / 1e6;
      }),
    ]);
    await Promise.all([edges, ...clients.map((c, i) => cycle(c, channel, `c${i}`, to, samples))]);
    const inWindow = samples.filter((s) => s.at >= from && s.at < to);
    const latencies = inWindow.map((s) => s.latency);
    const grants = inWindow.length;
    const cpu = cpuTo - cpuFrom;
    return {
      'grants/s': round(grants / MEASURE_S, 0),
      'register→go p50 (ms)': round(percentile(latencies, 50), 2),
      'register→go p99 (ms)': round(percentile(latencies, 99), 2),
      'hub CPU (% of one core)': round((cpu / MEASURE_S) * 100, 0),
      'hub CPU per grant (µs)': round((cpu / grants) * 1e6, 0),
      // The clients share the machine with the hub (and mosquitto): on 2 cores they bound the rate too.
      'bench clients CPU (% of one core)': round((clientsCpu / MEASURE_S) * 100, 0),
      'grants measured': grants,
    };
  } finally {
    await cleanup.run();
  }
}

export const semaphoreScenarios: Scenario[] = (['mosquitto', 'aedes'] as const).flatMap((broker) =>
  LEVELS.map((level) => ({
    name: `semaphore ${level.name} (register→go→finished for ${MEASURE_S} s, ${broker})`,
    run: () => measure(level, broker),
  })),
);
