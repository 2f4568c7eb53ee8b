import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AppState, decode } from '../../src/shared/messages.js';
import { appStateTopic } from '../../src/shared/topics.js';
import { recordingRestart, type TestApp } from './agent-process.js';
import type { Cleanup } from './cleanup.js';
import { GitFixture } from './git-fixture.js';
import { githubPushPayload, postWebhook, signedRequest } from './push-payload.js';
import { SECRET, startTestHub, watch, type BrokerKind } from './test-hub.js';
import { waitFor } from './wait.js';

/** The lines of a file a test's commands append to (empty when it does not exist yet). */
export const linesOf = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : []);

/**
 * One app `web` of agent `node-1` following acme/web main: a real repo, a hub on the given
 * broker, a recording restart, and every state message the agent publishes for the app.
 */
export async function startAppFixture(cleanup: Cleanup, broker: BrokerKind, app: Partial<TestApp> = {}, files: Record<string, string> = { 'app.txt': 'v0\n', 'health.txt': 'healthy\n' }) {
  const git = new GitFixture(files);
  cleanup.defer(() => git.remove());
  const hub = await startTestHub(cleanup, broker);
  const path = git.workdir('web');
  const restartLog = join(git.root, 'restarts.log');
  const appConfig: TestApp = { name: 'web', repo: 'acme/web', branch: 'main', path, remote: git.bare, restart: recordingRestart(restartLog), ...app };
  const stateMessages = await watch(cleanup, hub.mqttUrl, appStateTopic('node-1', 'web'));
  const states = (): AppState[] => stateMessages.messages.flatMap((m) => {
    const d = decode(AppState, m.payload);
    return d.ok ? [d.value] : [];
  });
  /** Waits for a state message matching `ok` among those from the `from`-th on, showing all seen if none comes. */
  const until = (what: string, ok: (s: AppState) => boolean, from = 0, timeoutMs?: number) =>
    waitFor(() => `${what}; seen: ${JSON.stringify(states().map((s) => [s.state, s.sha?.slice(0, 7), s.targetSha?.slice(0, 7), s.lastError?.message, s.retrying, s.interrupted]))}`, () => states().slice(from).find(ok), timeoutMs);
  const reached = (state: AppState['state'], sha: string, from = 0) => until(`state ${state} at ${sha}`, (s) => s.state === state && s.sha === sha, from);
  const push = (sha: string, before?: string, ref?: string) => postWebhook(hub.webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ after: sha, before, ref })));
  return { git, hub, path, restartLog, appConfig, states, until, reached, push };
}

/** A deployed, then B (holding a file `slow`, for commands that take long on it) pushed: the start of a kill mid-update. */
export async function deployThenPushSlow(f: Awaited<ReturnType<typeof startAppFixture>>): Promise<{ a: string; b: string }> {
  const a = f.git.commit('A', { 'app.txt': 'A\n' });
  if ((await f.push(a)).status !== 200) throw new Error('push of A not answered 200');
  await f.reached('deployed', a);
  const b = f.git.commit('B', { 'app.txt': 'B\n', slow: '' });
  if ((await f.push(b, a)).status !== 200) throw new Error('push of B not answered 200');
  return { a, b };
}
