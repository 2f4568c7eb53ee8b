/**
 * `webhook` / `webhook-mosquitto`: signed GitHub push requests through the real hub process
 * (verify → parse → publish QoS 1 → PUBACK → 200) at concurrency 1, 10 and 50, counting what a
 * QoS 1 subscriber on `github/#` receives and sampling the hub's RSS every 100 ms.
 */
import { randomBytes } from 'node:crypto';
import mqtt from 'mqtt';
import { Cleanup } from '../../test/support/cleanup.js';
import { startMosquitto } from '../../test/support/mosquitto.js';
import { githubPushPayload, sign } from '../../test/support/push-payload.js';
import { runAutocannon, type AutocannonRequest } from '../support/autocannon.js';
import { BENCH_SECRET, mb, progress, cpuSeconds, RssSampler, rssBytes, startHubProcess } from '../support/processes.js';
import { round, type Figures, type Scenario } from '../scenario.js';

/** Each level runs for `seconds` or `max` requests, whichever comes first. */
const LEVELS: { connections: number; seconds: number; max: number }[] = [
  { connections: 1, seconds: 3, max: 6_000 },
  { connections: 10, seconds: 4, max: 24_000 },
  { connections: 50, seconds: 4, max: 24_000 },
];
const WARMUP = { connections: 10, seconds: 1, max: 1_000 };
/** Distinct signed bodies (distinct `after` SHAs); every request also gets its own delivery id. */
const BODIES = 500;

type Signed = { body: Buffer; signature: string };

function signedBodies(): Signed[] {
  return Array.from({ length: BODIES }, () => {
    const body = JSON.stringify(githubPushPayload({ after: randomBytes(20).toString('hex'), before: randomBytes(20).toString('hex') }));
    return { body: Buffer.from(body), signature: sign(BENCH_SECRET, body) };
  });
}

/**
 * Requests for one run, each with a unique X-GitHub-Delivery (the hub dedupes by it). autocannon
 * calls setupRequest once per request it builds, on every connection, so a shared cursor hands
 * out each pre-built request exactly once; the pool has room for the one extra build per
 * connection autocannon makes after its last response.
 */
function requestPool(bodies: Signed[], tag: string, count: number): AutocannonRequest[] {
  const pool: AutocannonRequest[] = [];
  for (let i = 0; i < count; i++) {
    const { body, signature } = bodies[i % bodies.length]!;
    pool.push({
      method: 'POST',
      path: '/webhook',
      body,
      headers: {
        'content-type': 'application/json',
        'user-agent': 'GitHub-Hookshot/bench',
        'x-github-event': 'push',
        'x-github-delivery': `bench-${tag}-${i}`,
        'x-github-hook-id': '1',
        'x-hub-signature-256': signature,
      },
    });
  }
  return pool;
}

async function webhookBench(broker: 'aedes' | 'mosquitto'): Promise<Figures> {
  const cleanup = new Cleanup();
  const figures: Figures = {};
  try {
    let mqttUrl: string | undefined;
    if (broker === 'mosquitto') {
      const mosquitto = await startMosquitto();
      cleanup.defer(() => mosquitto.stop());
      mqttUrl = mosquitto.url;
    }
    const hub = await startHubProcess(cleanup, { mqttUrl });
    const rss = new RssSampler(hub.proc.pid, 100);
    cleanup.defer(() => rss.stop());
    figures['hub RSS at start (MB)'] = mb(rss.peak());

    const subscriber = await mqtt.connectAsync(hub.mqttUrl, { reconnectPeriod: 0, clean: true });
    cleanup.defer(() => subscriber.endAsync(true));
    const received: Buffer[] = [];
    subscriber.on('message', (_topic, payload) => void received.push(payload));
    await subscriber.subscribeAsync('github/#', { qos: 1 });

    const bodies = signedBodies();
    const url = hub.webhookUrl.replace(/\/webhook$/, '');
    const run = async (tag: string, { connections, seconds, max }: { connections: number; seconds: number; max: number }) => {
      const pool = requestPool(bodies, tag, max + connections * 2 + 10);
      let cursor = 0;
      const setupRequest = (): AutocannonRequest => pool[cursor++]!;
      received.length = 0;
      rss.reset();
      const pid = hub.proc.pid;
      const cpu0 = { hub: cpuSeconds(pid), main: cpuSeconds(pid, pid), self: process.cpuUsage(), at: performance.now() };
      const result = await runAutocannon({
        url,
        connections,
        duration: seconds,
        maxOverallRequests: max,
        timeout: 15,
        requests: [{ method: 'POST', path: '/webhook', setupRequest }],
      });
      const wall = (performance.now() - cpu0.at) / 1000;
      const selfCpu = process.cpuUsage(cpu0.self);
      const cpu = {
        hub: (cpuSeconds(pid) - cpu0.hub) / wall,
        main: (cpuSeconds(pid, pid) - cpu0.main) / wall,
        loadGenerator: (selfCpu.user + selfCpu.system) / 1e6 / wall,
      };
      // Messages may trail the 200s by a moment (the subscriber's copy is sent after the PUBACK).
      const deadline = Date.now() + 5000;
      while (received.length < result['2xx'] && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 200));
      const ids = new Set(received.map((p) => (JSON.parse(p.toString('utf8')) as { deliveryId: string }).deliveryId));
      return { result, cpu, messages: received.length, distinct: ids.size, peakRss: rss.peak() };
    };

    progress(`${broker}: warm-up (${WARMUP.seconds} s at c${WARMUP.connections})`);
    await run('warmup', WARMUP);
    for (const level of LEVELS) {
      const { connections } = level;
      const { result, cpu, messages, distinct, peakRss } = await run(`c${connections}`, level);
      const total = result['2xx'] + result.non2xx;
      const reqPerSec = total / result.duration;
      // A run that ends on its duration leaves up to `connections` requests sent but unanswered:
      // the hub may have published them, so they are told apart from the 200s, not hidden.
      const cutOff = result.requests.sent - total;
      const delivered = messages === distinct && messages >= result['2xx'] && messages <= result['2xx'] + cutOff;
      progress(`${broker} c${connections}: ${round(reqPerSec, 0)} req/s, ${result['2xx']} × 200, ${messages} messages`);
      const k = `c${connections}`;
      figures[`${k} requests/s`] = round(reqPerSec, 0);
      figures[`${k} latency p50 / p99 (ms)`] = `${result.latency.p50} / ${result.latency.p99}`;
      figures[`${k} 2xx / non-2xx / errors+timeouts`] = `${result['2xx']} / ${result.non2xx} / ${result.errors + result.timeouts}`;
      figures[`${k} messages received vs 200s`] =
        `${messages} vs ${result['2xx']}` +
        (messages === result['2xx'] && distinct === messages ? ' (equal)' : '') +
        (messages !== result['2xx'] && delivered ? ` (+${messages - result['2xx']} of the ${cutOff} requests cut off unanswered at the end)` : '') +
        (delivered ? '' : ` (MISMATCH: ${distinct} distinct, ${cutOff} cut off)`);
      figures[`${k} CPU: hub process / hub main thread / load gen`] = `${round(cpu.hub * 100, 0)}% / ${round(cpu.main * 100, 0)}% / ${round(cpu.loadGenerator * 100, 0)}%`;
      figures[`${k} hub peak RSS (MB)`] = mb(peakRss);
    }
    figures['hub RSS after the runs (MB)'] = mb(rssBytes(hub.proc.pid));
    return figures;
  } finally {
    await cleanup.run();
  }
}

export const webhookScenarios: Scenario[] = [
  { name: 'webhook', run: () => webhookBench('aedes') },
  { name: 'webhook-mosquitto', run: () => webhookBench('mosquitto') },
];
