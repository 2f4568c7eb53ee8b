import { Command } from 'commander';
import { decode, Sha } from '../shared/messages.js';
import { EnvName, ROLLOUT_ENDED, RolloutId, RolloutSnapshot, type RolloutReply } from '../shared/contract/rollout-messages.js';
import { rolloutStateTopic, TOPIC_LEVEL } from '../shared/topics.js';
import { checkedArg, EXIT, parsePositiveNumber, runCommand } from './process-lifecycle.js';
import { connectFromFlags, withMqttFlags, type MqttFlags } from './mqtt-flags.js';
import { apiFromFlags, getJson, withApiFlags, type ApiFlags, type ApiTarget } from './api-request.js';
import { requestRollouts, type ControlOp } from './rollout-request.js';
import { renderRollout, renderRolloutList } from './rollout-view.js';

type Flags = MqttFlags & ApiFlags & { wait: number; json?: boolean };
type Listed = NonNullable<RolloutReply['rollouts']>;

const rolloutIdArg = checkedArg((v) => RolloutId.safeParse(v).success, 'an id like web.production.0123456789ab (see "pushfleet rollout list")');
const envArg = checkedArg((v) => EnvName.safeParse(v).success, 'letters, digits, "_" or "-"');
const nameArg = checkedArg((v) => TOPIC_LEVEL.test(v), 'letters, digits, ".", "_" or "-"');

/** Sends one request; prints the hub's refusal and exits 1 if it refused. */
async function control(flags: Flags, op: ControlOp, done: string): Promise<number> {
  const client = await connectFromFlags(flags, flags.wait);
  try {
    const reply = await requestRollouts(client, op, flags.wait);
    if (!reply.ok) {
      process.stderr.write(`pushfleet: ${reply.error}\n`);
      return EXIT.failure;
    }
    process.stdout.write(`${done}\n`);
    return EXIT.ok;
  } finally {
    await client.endAsync();
  }
}

/** Prints one state of a rollout; true once it ended or when not watching. */
function show(snap: RolloutSnapshot, flags: Flags & { watch: boolean }): boolean {
  const ended = ROLLOUT_ENDED.includes(snap.status);
  if (flags.json) process.stdout.write(`${JSON.stringify(snap)}\n`);
  else process.stdout.write(`${process.stdout.isTTY && flags.watch ? '\x1b[H\x1b[2J' : ''}${renderRollout(snap)}${flags.watch && !ended ? '\n' : ''}`);
  return !flags.watch || ended;
}

const exitOf = (snap: RolloutSnapshot) => (snap.status === 'succeeded' || !ROLLOUT_ENDED.includes(snap.status) ? EXIT.ok : EXIT.failure);

/** The rollout as GET /api/v1/rollouts/{id} has it, without what the API adds (progress, batches): the snapshot the broker retains. */
async function fromApi(api: ApiTarget, id: string): Promise<RolloutSnapshot> {
  const { progress: _progress, batches: _batches, ...snap } = await getJson<RolloutSnapshot & { progress: unknown; batches: unknown }>(api, `/rollouts/${id}`);
  return snap;
}

/** --api: the rollout read again every second while watched, printed whenever it changed. */
async function statusFromApi(api: ApiTarget, id: string, flags: Flags & { watch: boolean }): Promise<number> {
  let shown = '';
  for (;;) {
    const snap = await fromApi(api, id);
    const text = JSON.stringify(snap);
    if (text !== shown && show(snap, flags)) return exitOf(snap);
    shown = text;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

/** Prints a rollout and, with --watch, redraws it on every change until it ends. */
async function status(id: string, flags: Flags & { watch: boolean }): Promise<number> {
  const api = apiFromFlags(flags, flags.wait);
  if (api) return statusFromApi(api, id, flags);
  const client = await connectFromFlags(flags, flags.wait);
  try {
    return await new Promise<number>((resolve) => {
      const timer = setTimeout(() => {
        process.stderr.write(`pushfleet: no rollout ${id} on the broker (see "pushfleet rollout list")\n`);
        resolve(EXIT.failure);
      }, flags.wait * 1000);
      client.on('message', (_topic, payload) => {
        const d = decode(RolloutSnapshot, payload);
        if (!d.ok) return;
        clearTimeout(timer);
        if (show(d.value, flags)) resolve(exitOf(d.value));
      });
      void client.subscribeAsync(rolloutStateTopic(id), { qos: 1 });
    });
  } finally {
    await client.endAsync();
  }
}

/** The newest rollouts, from the hub over the broker or, with --api, from GET /api/v1/rollouts (without the API's progress). */
async function listed(flags: Flags & { limit: number }): Promise<Listed> {
  const api = apiFromFlags(flags, flags.wait);
  if (api) {
    // The API pages by at most 1000; the engine's list takes as many.
    const page = await getJson<{ items: (Listed[number] & { progress: unknown })[] }>(api, `/rollouts?limit=${Math.min(flags.limit, 1000)}`);
    return page.items.map(({ progress: _progress, ...r }) => r);
  }
  const client = await connectFromFlags(flags, flags.wait);
  try {
    return (await requestRollouts(client, { op: 'list', limit: flags.limit }, flags.wait)).rollouts ?? [];
  } finally {
    await client.endAsync();
  }
}

export function rolloutCommand(): Command {
  const cmd = new Command('rollout').description('list, follow and steer rollouts (the hub runs them; see src/hub/engines/rollouts/README.md)');
  const sub = (name: string, description: string) =>
    withMqttFlags(cmd.command(name).description(description)).option('--wait <seconds>', 'how long to wait for the broker and the hub', parsePositiveNumber, 5);

  withApiFlags(sub('list', 'the newest rollouts, newest first'))
    .option('--limit <n>', 'how many', parsePositiveNumber, 20)
    .option('--json', 'print JSON')
    .action((flags: Flags & { limit: number }) =>
      runCommand(async () => {
        const rollouts = await listed(flags);
        process.stdout.write(flags.json ? `${JSON.stringify(rollouts, null, 2)}\n` : renderRolloutList(rollouts));
      }),
    );
  withApiFlags(sub('status', 'one rollout: policy, progress and every host; --watch follows it live until it ends (exit 1 if it did not succeed)')
    .argument('<id>', 'rollout id', rolloutIdArg)
    .option('--watch', 'keep showing changes until the rollout ends (default on a terminal)', process.stdout.isTTY)
    .option('--no-watch', 'print once')
    .option('--json', 'print the snapshot as JSON (one line per change with --watch)'))
    .action((id: string, flags: Flags & { watch: boolean }) => runCommand(() => status(id, flags)));
  for (const op of ['pause', 'resume', 'abort'] as const) {
    const what = { pause: 'stop granting new hosts (updating ones finish)', resume: 'continue a paused rollout', abort: 'stop for good; with onAbort: rollback, updated hosts go back' }[op];
    sub(op, what)
      .argument('<id>', 'rollout id', rolloutIdArg)
      .action((id: string, flags: Flags) => runCommand(() => control(flags, { op, id }, `${op}: ${id}`)));
  }
  for (const op of ['freeze', 'unfreeze'] as const) {
    const what = op === 'freeze' ? 'hold every rollout of an environment; pushes are recorded and start on unfreeze' : 'let the environment\'s newest rollouts start';
    sub(op, what)
      .argument('<env>', 'environment (the agents\' env label)', envArg)
      .action((env: string, flags: Flags) => runCommand(() => control(flags, { op, env }, `${op}: ${env}`)));
  }
  sub('pin', 'keep one host\'s app on a SHA, whatever is pushed (it updates to it at once)')
    .argument('<agent>', 'agent id', nameArg)
    .argument('<app>', 'app name', nameArg)
    .argument('<sha>', 'full commit SHA', checkedArg((v) => Sha.safeParse(v).success, 'a full 40- or 64-hex commit SHA'))
    .action((agent: string, app: string, sha: string, flags: Flags) => runCommand(() => control(flags, { op: 'pin', agent, app, sha }, `pinned ${agent}/${app} to ${sha}`)));
  sub('unpin', 'let a pinned app follow pushes again (it goes to its branch\'s newest SHA)')
    .argument('<agent>', 'agent id', nameArg)
    .argument('<app>', 'app name', nameArg)
    .action((agent: string, app: string, flags: Flags) => runCommand(() => control(flags, { op: 'unpin', agent, app }, `unpinned ${agent}/${app}`)));
  return cmd;
}
