/**
 * One process of the fleet simulator: runs a share of the simulated agents (SimAgent.start) and
 * answers its parent's questions over the IPC channel. Several of these keep the simulator's
 * own event loop from being what a figure measures. Started by fleet.ts with `fork`.
 */
import { SimAgent } from './sim-agent.js';
import type { FleetReport, ToWorker } from './fleet-protocol.js';

/** Wall-clock milliseconds with performance.now()'s precision, comparable across processes. */
const now = () => performance.timeOrigin + performance.now();

const agents: SimAgent[] = [];
/** Per agent: when it last finished announcing, and when it last got a head and which SHA it runs. */
const announced = new Map<string, number>();
const heads = new Map<string, { sha: string; at: number }>();
const errors: string[] = [];
let errorCount = 0;
/** Errors by kind (their message with numbers taken out), to tell a reconnect storm from refusals. */
const errorKinds: Record<string, number> = {};

const send = (msg: unknown) => process.send!(msg);

function report(since: number, sha: string | null): FleetReport {
  let onlineSince = 0;
  let lastOnline = 0;
  for (const at of announced.values()) {
    if (at < since) continue;
    onlineSince++;
    lastOnline = Math.max(lastOnline, at);
  }
  let atSha = 0;
  let lastHead = 0;
  for (const h of heads.values()) {
    if (h.at < since || h.sha !== sha) continue;
    atSha++;
    lastHead = Math.max(lastHead, h.at);
  }
  return { started: agents.length, onlineSince, lastOnline, atSha, lastHead, errorCount, errorKinds: { ...errorKinds }, errors: errors.splice(0) };
}

async function start(msg: Extract<ToWorker, { type: 'start' }>): Promise<void> {
  const queue = [...msg.agents];
  const one = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const agent = await SimAgent.start(next.id, {
        url: msg.url,
        password: next.password,
        rollout: msg.rollout,
        stepMs: msg.stepMs,
        heartbeatMs: msg.heartbeatMs,
        onAnnounced: (a) => announced.set(a.id, now()),
        onHead: (a, sha) => heads.set(a.id, { sha, at: now() }),
        onError: (a, err) => {
          errorCount++;
          const kind = err.message.replace(/\d+/g, '#');
          errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
          if (errors.length < 5) errors.push(`${a.id}: ${err.message}`);
        },
      });
      agents.push(agent);
    }
  };
  // A bounded number of logins in flight per process: a whole fleet connecting at one instant is a stampede no real fleet makes.
  await Promise.all(Array.from({ length: Math.min(msg.concurrency, msg.agents.length) }, one));
}

process.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'start':
      start(msg).then(
        () => send({ type: 'started' }),
        (err: Error) => send({ type: 'failed', error: err.message }),
      );
      break;
    case 'report':
      send({ type: 'report', report: report(msg.since, msg.sha) });
      break;
    case 'stop':
      void Promise.all(agents.map((a) => a.close())).finally(() => process.exit(0));
      break;
  }
});
// The parent gone (a bench stopped with ^C): the simulated agents go too.
process.on('disconnect', () => process.exit(0));
