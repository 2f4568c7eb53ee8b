/**
 * `node dist/bench/profile-summary.js <file.cpuprofile>`: where a hub's main thread spent its busy
 * time, by stage. Profiles come from `BENCH_CPU_PROF=<dir> node dist/bench/run.js webhook`, which
 * runs the hub under `node --cpu-prof` (one file per thread; the main thread's ends in .0.001).
 * Each sample goes to the innermost stack frame that matches a stage.
 */
import { readFileSync } from 'node:fs';

type Frame = { functionName: string; url: string };
type Profile = { nodes: { id: number; callFrame: Frame; children?: number[] }[]; samples: number[]; timeDeltas: number[] };

const STAGES: [string, (f: Frame) => boolean][] = [
  ['GC', (f) => f.functionName === '(garbage collector)'],
  ['idle', (f) => f.functionName === '(idle)'],
  ['signature verify (HMAC)', (f) => /webhooks-methods|@octokit\/webhooks\/|crypto\/hash/.test(f.url)],
  ['deliveries: SQLite find/insert', (f) => /webhook\/deliveries\.js/.test(f.url)],
  ['heads engine: decode own echo + SQLite upsert', (f) => /heads-engine\.js/.test(f.url)],
  ['dispatcher (topic match)', (f) => /dispatcher\.js|topic-match\.js/.test(f.url)],
  ['zod (payload schema, message checks)', (f) => /node_modules\/zod/.test(f.url) || /shared\/messages\.js/.test(f.url)],
  ['toPushMessage', (f) => /github-push\.js/.test(f.url)],
  ['publishPush (stringify, timers)', (f) => /push-publisher\.js/.test(f.url)],
  ['mqtt.js + mqtt-packet (incl. its socket writes)', (f) => /node_modules\/(mqtt|mqtt-packet|readable-stream|bl|number-allocator)\//.test(f.url)],
  ['webhook handler (JSON.parse body, headers)', (f) => /webhook\/route\.js/.test(f.url)],
  ['body read (raw-body, body-parser)', (f) => /raw-body|body-parser|iconv-lite|type-is/.test(f.url)],
  ['express, router', (f) => /node_modules\/(express|router|send|finalhandler|on-finished|debug)\//.test(f.url)],
  ['node http (parse, response write)', (f) => /node:_http|node:http/.test(f.url)],
  ['node net/streams (other socket I/O)', (f) => /node:net|node:internal\/streams|stream_base/.test(f.url)],
];

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: node dist/bench/profile-summary.js <file.cpuprofile>\n');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const time = new Map<string, number>();
let total = 0;
profile.samples.forEach((id, i) => {
  const d = profile.timeDeltas[i] ?? 0;
  total += d;
  let stage = 'other';
  find: for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const frame = byId.get(cur)!.callFrame;
    for (const [name, test] of STAGES) {
      if (test(frame)) {
        stage = name;
        break find;
      }
    }
  }
  time.set(stage, (time.get(stage) ?? 0) + d);
});
const busy = total - (time.get('idle') ?? 0);
process.stdout.write(`${file}: ${Math.round(total / 1000)} ms profiled, ${Math.round(busy / 1000)} ms busy\n`);
for (const [stage, t] of [...time].sort((a, b) => b[1] - a[1])) {
  if (stage !== 'idle') process.stdout.write(`${((t / busy) * 100).toFixed(1).padStart(6)}%  ${stage}\n`);
}
