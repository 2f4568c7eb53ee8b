import { randomUUID } from 'node:crypto';
import { Command } from 'commander';
import { simpleGit } from 'simple-git';
import { z } from 'zod';
import { validateConfig } from '../shared/config-file.js';
import { GitRef, RepoName, SCHEMA_VERSION, Sha, ZERO_SHA, type PushMessage } from '../shared/messages.js';
import { NotifyReply, type NotifyRequest } from '../shared/contract/notify-messages.js';
import { buildPushMessage } from '../shared/push-message.js';
import { NOTIFY_REQUEST, notifyReplyTopic } from '../shared/topics.js';
import { requestHub } from './mqtt-request.js';
import { CommandError, runCommand } from './process-lifecycle.js';
import { connectFromFlags, withMqttFlags, type MqttFlags } from './mqtt-flags.js';

const NotifyFlags = z.object({
  repo: RepoName,
  ref: GitRef,
  before: Sha,
  after: Sha,
  pusher: z.string().min(1).max(200),
  cloneUrl: z.string().min(1).max(2048),
  gitDir: z.string().min(1),
});
type NotifyFlags = z.infer<typeof NotifyFlags>;

/** Reads what GitHub would send about a push from the repository itself. */
async function describePush(flags: NotifyFlags): Promise<PushMessage> {
  const git = simpleGit({ baseDir: flags.gitDir });
  const created = flags.before === ZERO_SHA;
  const deleted = flags.after === ZERO_SHA;
  let forced = false;
  if (!created && !deleted) {
    forced = await git.raw(['merge-base', '--is-ancestor', flags.before, flags.after]).then(() => false, () => true);
  }
  let headCommit: PushMessage['headCommit'] = null;
  if (!deleted) {
    const SEP = '\x1f';
    // Peel an annotated tag to its commit: `git show` of a tag object prints the tag header first.
    const out = await git.raw(['show', '-s', `--format=%H${SEP}%aI${SEP}%an${SEP}%ae${SEP}%B`, `${flags.after}^{commit}`]);
    const [id, timestamp, name, email, ...message] = out.split(SEP);
    headCommit = { id: id!, timestamp: timestamp!, author: { name: name!, email: email || null, username: null }, message: message.join(SEP).trim() };
  }
  return buildPushMessage({
    deliveryId: randomUUID(),
    source: 'post-receive',
    repo: flags.repo,
    ref: flags.ref,
    before: flags.before,
    after: flags.after,
    created,
    deleted,
    forced,
    pusher: { name: flags.pusher, email: null },
    headCommit,
    cloneUrl: flags.cloneUrl,
    receivedAt: new Date().toISOString(),
  });
}

export function notifyCommand(): Command {
  return withMqttFlags(new Command('notify'))
    .description('have the hub publish one push and its signed head, as for a webhook (used by hooks/post-receive); exits 0 once the hub says published')
    .requiredOption('--repo <owner/name>', 'repository name agents follow')
    .requiredOption('--ref <ref>', 'full ref, e.g. refs/heads/main')
    .requiredOption('--before <sha>', 'SHA before the push (zeros when created)')
    .requiredOption('--after <sha>', 'SHA after the push (zeros when deleted)')
    .option('--pusher <name>', 'who pushed', process.env.USER ?? 'unknown')
    .option('--clone-url <url>', 'clone URL to report (agents clone from their own config)', process.cwd())
    .option('--git-dir <dir>', 'repository to read the commit from', process.env.GIT_DIR ?? '.')
    .option('--timeout <ms>', 'how long to wait for the broker and the hub to answer', (v) => Number(v), 10_000)
    .action((raw: Record<string, string> & MqttFlags & { timeout: number }) =>
      runCommand(async () => {
        const flags = validateConfig(NotifyFlags, raw, 'flags');
        const push = await describePush(flags);
        const client = await connectFromFlags(raw, raw.timeout / 1000);
        const requestId = randomUUID();
        let reply: NotifyReply;
        try {
          reply = await requestHub(client, {
            topic: NOTIFY_REQUEST,
            payload: JSON.stringify({ v: SCHEMA_VERSION, requestId, push } satisfies NotifyRequest),
            replyTopic: notifyReplyTopic(requestId),
            reply: NotifyReply,
            timeoutSeconds: raw.timeout / 1000,
            noAnswer: 'is it running on this broker? Only the hub may publish heads (it signs them)',
          });
        } finally {
          await client.endAsync();
        }
        if (reply.state !== 'published' && reply.state !== 'duplicate') throw new CommandError(`the hub did not publish ${push.ref} ${push.after} of ${push.repo}: ${reply.state}: ${reply.detail} (delivery ${push.deliveryId})`);
        process.stdout.write(`published ${push.ref} ${push.after} of ${push.repo}${reply.state === 'duplicate' ? ' (already published)' : ''}\n`);
      }),
    );
}
