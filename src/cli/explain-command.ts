import { Command } from 'commander';
import { collectAgentMessage, emptySnapshot } from '../shared/fleet.js';
import { decode, RepoName, Sha, ZERO_SHA } from '../shared/messages.js';
import { RolloutSettings } from '../shared/contract/rollout-messages.js';
import { isValidGitRef } from '../shared/git-ref.js';
import { AGENTS_ALL, ROLLOUT_SETTINGS } from '../shared/topics.js';
import { batchesOf, planPush, type Plan } from '../hub/engines/rollouts/plan.js';
import { BUILTIN_POLICY } from '../hub/engines/rollouts/policy.js';
import { ConfigError } from '../shared/config-file.js';
import { checkedArg, parsePositiveNumber, runCommand } from './process-lifecycle.js';
import { connectFromFlags, withMqttFlags, type MqttFlags } from './mqtt-flags.js';
import { readStateThenClose } from './read-state.js';

type Flags = MqttFlags & { repo: string; branch?: string; tag?: string; sha?: string; wait: number; json?: boolean };

function render(plan: Plan, frozen: string[], settingsKnown: boolean): string {
  const out: string[] = [];
  if (!settingsKnown) out.push('(no rollout settings on the broker: is the hub running with engines.rollouts? planning with the built-in policy)', '');
  for (const r of plan.rollouts) {
    const p = r.policy;
    out.push(`rollout ${r.id}: ${r.targets.length} host(s) in ${r.env}${frozen.includes(r.env) ? ' (FROZEN: starts on unfreeze)' : ''}`);
    out.push(`  policy: batch ${p.batchSize}, canary ${p.canary}, maxUnavailable ${p.maxUnavailable}, hostTimeout ${p.hostTimeout}s, abort after ${p.failureThreshold} failed (${p.onAbort})`);
    batchesOf(r).forEach((batch, i) => out.push(`  ${i === 0 && p.canary > 0 ? 'canary ' : `batch ${p.canary > 0 ? i : i + 1}`}: ${batch.join(', ')}`));
  }
  if (plan.immediate.length) out.push(`updates at once (apps without rollout: true): ${plan.immediate.map((i) => `${i.agent}/${i.app}`).join(', ')}`);
  if (!plan.rollouts.length && !plan.immediate.length) out.push(plan.excluded.length ? 'this push would update nothing' : 'this push would update nothing: no agent has reported to this broker');
  if (plan.excluded.length) {
    out.push('', 'not updated:');
    for (const e of plan.excluded) out.push(`  ${e.agent}${e.app ? `/${e.app}` : ''}: ${e.reason}`);
  }
  out.push('', 'Batches are the rounds if every host took as long; a freed slot is refilled at once.');
  return `${out.join('\n')}\n`;
}

export function explainCommand(): Command {
  return withMqttFlags(new Command('explain'))
    .description('show which hosts and apps a push would update, in which batches, and why the others would not (publishes nothing)')
    .requiredOption('--repo <owner/name>', 'the pushed repository', checkedArg((v) => RepoName.safeParse(v).success, '"owner/name"'))
    .option('--branch <name>', 'the pushed branch', checkedArg((v) => isValidGitRef(`refs/heads/${v}`), 'a valid branch name'))
    .option('--tag <name>', 'the pushed tag (instead of --branch)', checkedArg((v) => isValidGitRef(`refs/tags/${v}`), 'a valid tag name'))
    .option('--sha <sha>', 'the pushed commit (hosts already on it are left out)', checkedArg((v) => Sha.safeParse(v).success, 'a full commit SHA'))
    .option('--json', 'print the plan as JSON')
    .option('--wait <seconds>', 'how long to wait for the broker', parsePositiveNumber, 5)
    .action((flags: Flags) =>
      runCommand(async () => {
        if ((flags.branch === undefined) === (flags.tag === undefined)) throw new ConfigError('give exactly one of --branch or --tag');
        const fleet = emptySnapshot();
        let settings: RolloutSettings | undefined;
        const client = await connectFromFlags(flags, flags.wait);
        await readStateThenClose(client, [AGENTS_ALL, ROLLOUT_SETTINGS], (topic, payload) => {
          if (topic !== ROLLOUT_SETTINGS) return void collectAgentMessage(fleet, topic, payload);
          const d = decode(RolloutSettings, payload);
          if (d.ok) settings = d.value;
        });
        const kind = flags.branch !== undefined ? 'heads' : 'tags';
        const plan = planPush(
          fleet,
          { repo: flags.repo, ref: `refs/${kind}/${flags.branch ?? flags.tag}`, branch: flags.branch ?? null, tag: flags.tag ?? null, deleted: false, after: flags.sha ?? ZERO_SHA, headCommit: null },
          settings ?? { defaults: BUILTIN_POLICY, policies: [], frozen: [] },
        );
        process.stdout.write(flags.json ? `${JSON.stringify(plan, null, 2)}\n` : render(plan, settings?.frozen ?? [], settings !== undefined));
      }),
    );
}
