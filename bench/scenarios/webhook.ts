/**
 * `webhook` / `webhook-mosquitto`: signed GitHub push requests through the real hub process
 * (verify → record → publish QoS 1 → PUBACK → 200) at concurrency 1, 10 and 50, checking each
 * answer against what a QoS 1 subscriber on `github/#` receives and sampling the hub's RSS every
 * 100 ms.
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

type TrackedRequest = AutocannonRequest & { onResponse(status: number, body: unknown, context: Record<string, unknown>): void };

/**
 * Checks every answer against what a QoS 1 subscriber received: each 200 exactly once, each 202
 * at most once (it arrives once the broker acknowledges it), each 503 or other refusal never, no
 * delivery twice. Requests cut off unanswered when a run ends may have been published (once).
 */
function checkDelivery(statusOf: Map<string, number>, received: Buffer[]): { answers: string; verdict: string } {
  const copies = new Map<string, number>();
  for (const p of received) {
    const id = (JSON.parse(p.toString('utf8')) as { deliveryId: string }).deliveryId;
    copies.set(id, (copies.get(id) ?? 0) + 1);
  }
  const count = (status: number) => [...statusOf.values()].filter((s) => s === status).length;
  const ids = (keep: (status: number) => boolean) => [...statusOf].filter(([, s]) => keep(s)).map(([id]) => id);
  const twice = [...copies].filter(([, n]) => n > 1).length;
  const missing200 = ids((s) => s === 200).filter((id) => !copies.has(id)).length;
  const arrived202 = ids((s) => s === 202).filter((id) => copies.has(id)).length;
  const refusedButSent = ids((s) => s !== 200 && s !== 202).filter((id) => copies.has(id)).length;
  const cutOffSent = [...copies.keys()].filter((id) => !statusOf.has(id)).length;
  const answers = `${count(200)} / ${count(202)} / ${count(503)} / ${statusOf.size - count(200) - count(202) - count(503)}`;
  const problems = [
    twice && `${twice} delivered twice`,
    missing200 && `${missing200} answered 200 never arrived`,
    refusedButSent && `${refusedButSent} refused but published`,
  ].filter(Boolean);
  const notes = [count(202) && `${arrived202} of ${count(202)} answered 202 arrived`, cutOffSent && `+${cutOffSent} of the requests cut off unanswered at the end`].filter(Boolean);
  return { answers, verdict: problems.length ? `MISMATCH: ${problems.join(', ')}` : `every 200 exactly once${notes.length ? ` (${notes.join(', ')})` : ''}` };
}

async function webhookBench(broker: 'aedes' | 'mosquitto', secure = true): Promise<Figures> {
  const cleanup = new Cleanup();
  const figures: Figures = {};
  try {
    let mqttUrl: string | undefined;
    if (broker === 'mosquitto') {
      const mosquitto = await startMosquitto();
      cleanup.defer(() => mosquitto.stop());
      mqttUrl = mosquitto.url;
    }
    const hub = await startHubProcess(cleanup, { mqttUrl, secure });
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
      // What each delivery was answered, so every answer can be checked against what arrived.
      const statusOf = new Map<string, number>();
      const tracked: TrackedRequest = {
        method: 'POST',
        path: '/webhook',
        setupRequest: (_req, context) => {
          const next = pool[cursor++]!;
          context.delivery = next.headers!['x-github-delivery'];
          return next;
        },
        // Called before autocannon builds the connection's next request, so `context` is this one's.
        onResponse: (status, _body, context) => void statusOf.set(context.delivery as string, status),
      };
      received.length = 0;
      rss.reset();
      const pid = hub.proc.pid;
      const cpu0 = { hub: cpuSeconds(pid), main: cpuSeconds(pid, pid), self: process.cpuUsage(), at: performance.now() };
      const result = await runAutocannon({ url, connections, duration: seconds, maxOverallRequests: max, timeout: 15, requests: [tracked] });
      const wall = (performance.now() - cpu0.at) / 1000;
      const selfCpu = process.cpuUsage(cpu0.self);
      const cpu = {
        hub: (cpuSeconds(pid) - cpu0.hub) / wall,
        main: (cpuSeconds(pid, pid) - cpu0.main) / wall,
        loadGenerator: (selfCpu.user + selfCpu.system) / 1e6 / wall,
      };
      // Messages may trail the answers by a moment (the subscriber's copy is sent after the PUBACK);
      // a 202 was not acknowledged yet when answered, so it gets the same wait to arrive.
      const answered2xx = [...statusOf.values()].filter((s) => s === 200 || s === 202).length;
      const deadline = Date.now() + 5000;
      while (received.length < answered2xx && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 200));
      return { result, cpu, delivery: checkDelivery(statusOf, received), peakRss: rss.peak() };
    };

    progress(`${broker}: warm-up (${WARMUP.seconds} s at c${WARMUP.connections})`);
    await run('warmup', WARMUP);
    for (const level of LEVELS) {
      const { connections } = level;
      const { result, cpu, delivery, peakRss } = await run(`c${connections}`, level);
      const total = result['2xx'] + result.non2xx;
      const reqPerSec = total / result.duration;
      progress(`${broker} c${connections}: ${round(reqPerSec, 0)} req/s, ${delivery.answers}, ${delivery.verdict}`);
      const k = `c${connections}`;
      figures[`${k} requests/s`] = round(reqPerSec, 0);
      figures[`${k} latency p50 / p99 (ms)`] = `${result.latency.p50} / ${result.latency.p99}`;
      figures[`${k} answers 200 / 202 / 503 / other; errors+timeouts`] = `${delivery.answers}; ${result.errors + result.timeouts}`;
      figures[`${k} delivered`] = delivery.verdict;
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
  // Side by side with `webhook`: what broker accounts and signing each head cost the hub.
  { name: 'webhook-open', run: () => webhookBench('aedes', false) },
];
