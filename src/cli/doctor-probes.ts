import { accessSync, constants, existsSync, readdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { MqttClient } from 'mqtt';
import { agentSubscriptions } from '../../agent/agent.js';
import type { AgentConfig, AppConfig } from '../../agent/config.js';
import { GitWorkdir } from '../../agent/git-workdir.js';
import { ClockSync } from '../../agent/node/clock-sync.js';
import { describeExit, startProcess } from '../../agent/run-command.js';
import { preciseNow } from '../hub/engines/orchestrator/precise-time.js';
import { TimeReply, type ClockEstimate, type TimeRequest } from '../shared/contract/orchestrator-messages.js';
import { decode, SCHEMA_VERSION } from '../shared/messages.js';
import { brokerCredentials, clientOptions, connectMqtt, settledWithin, type MqttConnectionConfig } from '../shared/mqtt-connection.js';
import { redactUrl } from '../shared/mqtt-url.js';
import { firstLine } from '../shared/startup.js';
import { loadVerifyKey } from '../shared/signing/keys.js';
import { TIME_REQUEST, timeReplyTopic } from '../shared/topics.js';
import { brokerFailure, clockVerdict, parseLsRemote, pathVerdict, refVerdict, subscriptionVerdict, type Check, type DirFacts, type PathFacts } from './doctor-checks.js';

// What `pushfleet doctor` looks at on this host, each probe as the agent itself would do it
// (same config loader, connection settings, git environment); doctor-checks.ts judges.

export function loadHubKey(file: string): { kid: string } | { error: string } {
  try {
    return { kid: loadVerifyKey(file).kid };
  } catch (err) {
    return { error: (err as NodeJS.ErrnoException).code ?? firstLine(err) };
  }
}

/** Connects and logs in as `cfg` says; the client when the broker let it in. */
export async function brokerLogin(cfg: MqttConnectionConfig, timeoutMs: number): Promise<{ check: Check; client?: MqttClient; username?: string }> {
  const url = redactUrl(cfg.url);
  let username: string | undefined;
  try {
    // The files it names first (passwordFile, tls.*): a missing one is not an unreachable broker.
    username = brokerCredentials(cfg).username;
    clientOptions(cfg);
  } catch (err) {
    const file = (err as NodeJS.ErrnoException).path;
    return { check: { check: 'broker', verdict: 'FAIL', detail: file ? `cannot read ${file} (${(err as NodeJS.ErrnoException).code}): check mqtt.tls` : firstLine(err) } };
  }
  try {
    // No clientId: the service's own would take over its session (and cut the running one off).
    const client = await connectMqtt({ ...cfg, clientId: undefined }, { timeoutMs });
    client.on('error', () => undefined); // after the CONNACK, every answer is awaited
    return { check: { check: 'broker', verdict: 'ok', detail: `${url} accepts this login (${username === undefined ? 'anonymously' : `as ${username}`})` }, client, username };
  } catch (err) {
    return { check: brokerFailure(url, username, err as Error) };
  }
}

/** Logs in as the agent, makes its subscriptions and measures the clock offset to the hub. */
export async function brokerChecks(config: AgentConfig, timeoutMs: number): Promise<Check[]> {
  const { check: broker, client, username } = await brokerLogin(config.mqtt, timeoutMs);
  if (!client) return [broker, skipped('subscriptions'), skipped('clock')];
  try {
    const { directives, heads } = agentSubscriptions(config);
    const filters = [...directives, ...heads, timeReplyTopic(config.id)];
    const refused: string[] = [];
    // One filter per SUBSCRIBE: mqtt.js reports a refused one as an error for the whole packet.
    for (const filter of filters) {
      const answered = await settledWithin(client.subscribeAsync(filter, { qos: 0 }).catch(() => refused.push(filter)), timeoutMs);
      if (!answered) return [broker, { check: 'subscriptions', verdict: 'FAIL', detail: `the broker did not answer a SUBSCRIBE to ${filter} within ${timeoutMs / 1000} s` }, skipped('clock')];
    }
    const clock = refused.includes(timeReplyTopic(config.id)) ? skipped('clock') : clockVerdict(await measureClock(client, config.id));
    return [broker, subscriptionVerdict(config.id, username, filters, refused), clock];
  } finally {
    await client.endAsync(true);
  }
}

const skipped = (check: string): Check => ({ check, verdict: 'skip', detail: 'needs the broker' });

/**
 * The orchestrator's clock pings, on this agent's reply topic. A running agent that is a playbook
 * node shares that topic: each side may take the other's reply, which is still a valid sample
 * (it carries its own t0, taken on this same host's clock).
 */
function measureClock(client: MqttClient, agent: string): Promise<ClockEstimate | null> {
  const sync = new ClockSync({
    send: (seq, t0) => void client.publish(TIME_REQUEST, JSON.stringify({ v: SCHEMA_VERSION, agent, seq, t0 } satisfies TimeRequest), { qos: 0 }),
    now: preciseNow,
    samples: 4,
    replyTimeoutMs: 1000,
    gapMs: 20,
    keepBetterMs: 0,
  });
  client.on('message', (topic, payload) => {
    const t3 = preciseNow();
    if (topic !== timeReplyTopic(agent)) return;
    const reply = decode(TimeReply, payload);
    if (reply.ok) sync.onReply(reply.value, t3);
  });
  return sync.measure();
}

/** What is at `path`, and whether this account could create it (the nearest existing directory is writable). */
export function dirFacts(path: string): DirFacts {
  if (existsSync(path)) return statSync(path).isDirectory() ? { kind: 'directory', writable: writable(path) } : { kind: 'not-directory' };
  let ancestor = dirname(path);
  while (!existsSync(ancestor) && dirname(ancestor) !== ancestor) ancestor = dirname(ancestor);
  return { kind: 'missing', ancestor, writable: writable(ancestor) };
}

/** What is at the app's path, and whether the agent's account could clone there. */
export async function pathFacts(app: AppConfig): Promise<PathFacts> {
  const dir = dirFacts(app.path);
  if (dir.kind !== 'directory') return dir;
  if (existsSync(`${app.path}/.git`)) return { kind: 'work-tree', head: await new GitWorkdir(app.path, app.remote).head() };
  return { kind: 'not-git', entries: readdirSync(app.path).length, writable: dir.writable };
}

const writable = (dir: string): boolean => {
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** `git ls-remote` of the app's remote as the agent's fetch would reach it, then whether its branch or tag is there. */
export async function remoteChecks(app: AppConfig, timeoutMs: number): Promise<Check[]> {
  const name = `app ${app.name} remote`;
  const shown = redactUrl(app.remote);
  const limit = Math.min(timeoutMs, app.fetchTimeout * 1000);
  const argv = ['git', 'ls-remote', app.branch !== undefined ? '--heads' : '--tags', app.remote];
  let output = '';
  // Its own process group under a deadline, as the agent's fetch: a stalled remote helper is cut too.
  const exit = await startProcess(argv, {
    env: { ...process.env, GIT_TERMINAL_PROMPT: '0' },
    timeoutMs: limit,
    killGraceMs: 1000,
    onLine: (stream, line) => void (stream === 'stdout' && (output += `${line}\n`)),
  }).exited;
  if (exit.code !== 0 || exit.error) {
    const why = exit.timedOut ? `timed out after ${limit / 1000} s` : describeExit(argv, exit);
    // git's own reason ("fatal: …") rather than its closing advice.
    const lines = exit.tail.trim().split('\n');
    // Credentials in a remote URL (a token) are not shown, whatever git echoes of it.
    const said = (lines.find((l) => l.startsWith('fatal:')) ?? lines.at(-1))?.replace(/\/\/[^/@\s]*@/g, '//***@');
    return [
      { check: name, verdict: 'FAIL', detail: `git ls-remote ${shown} ${why}${said ? `: ${said}` : ''}: check "remote" and this account's git credentials` },
      { check: `app ${app.name} ${app.branch !== undefined ? 'branch' : 'tag'}`, verdict: 'skip', detail: 'needs the remote' },
    ];
  }
  const refs = parseLsRemote(output, app.branch !== undefined ? 'refs/heads/' : 'refs/tags/');
  return [{ check: name, verdict: 'ok', detail: `${shown} answers git ls-remote` }, refVerdict(app, refs)];
}

export async function appChecks(app: AppConfig, timeoutMs: number): Promise<Check[]> {
  return [pathVerdict(app, await pathFacts(app)), ...(await remoteChecks(app, timeoutMs))];
}

/** The unit's states, or null when systemd does not run this host (no /run/systemd/system, as sd_booted checks). */
export async function systemdState(unit: string, timeoutMs: number): Promise<string | null> {
  if (!existsSync('/run/systemd/system')) return null;
  let output = '';
  const exit = await startProcess(['systemctl', 'show', '-p', 'LoadState', '-p', 'ActiveState', '-p', 'SubState', unit], {
    env: process.env,
    timeoutMs,
    onLine: (stream, line) => void (stream === 'stdout' && (output += `${line}\n`)),
  }).exited;
  return exit.code === 0 ? output.trim() : `ActiveState=unknown (systemctl ${describeExit(['systemctl'], exit)})`;
}
