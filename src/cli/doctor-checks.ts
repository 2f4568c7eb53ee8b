import type { ClockEstimate } from '../shared/contract/orchestrator-messages.js';
import { refusedLogin } from '../shared/mqtt-connection.js';
import { appFollowsPush, type Follows } from '../shared/push-match.js';

// `pushfleet doctor`'s verdicts: each takes what a probe found (doctor-probes.ts) and says ok,
// warn, FAIL or skip with what to do. No I/O here, so every verdict is a unit test.

export type Verdict = 'ok' | 'warn' | 'FAIL' | 'skip';
export type Check = { check: string; verdict: Verdict; detail: string };

const check = (name: string, verdict: Verdict, detail: string): Check => ({ check: name, verdict, detail });

/** Exit status: 1 when any check failed; warnings and skips do not fail. */
export const doctorExit = (checks: readonly Check[]): 0 | 1 => (checks.some((c) => c.verdict === 'FAIL') ? 1 : 0);

/** One line per check (`ok   broker  mqtt://hub:1883 accepts …`); a detail's further lines (every config error) indented below it. */
export function renderChecks(checks: readonly Check[]): string {
  const width = Math.max(0, ...checks.map((c) => c.check.length));
  const indent = ' '.repeat(5 + width + 2);
  return checks.map((c) => `${c.verdict.padEnd(4)} ${c.check.padEnd(width)}  ${c.detail.split('\n').join(`\n${indent}`)}\n`).join('');
}

/** A connection that did not get in: the broker is not there, or it is and said no. */
export function brokerFailure(url: string, username: string | undefined, err: Error): Check {
  const code = (err as { code?: unknown }).code;
  if (refusedLogin(err)) {
    const who = username === undefined ? 'an anonymous client' : `user ${username}`;
    const why = code === 4 || code === 134 ? 'bad user name or password' : 'not authorized';
    return check('broker', 'FAIL', `${url} refused the login of ${who} (${why}): check mqtt.username and mqtt.passwordFile; on the hub \`pushfleet users add\` makes an account`);
  }
  const reason = typeof code === 'string' ? `${code}: ${err.message}` : err.message;
  if (typeof code === 'string' && /CERT|SSL|TLS|_KEY|SELF_SIGNED|HOSTNAME|VERIFY|ISSUER/i.test(code)) {
    return check('broker', 'FAIL', `${url}: TLS handshake failed (${reason}): check mqtt.tls (ca, cert, key)`);
  }
  return check('broker', 'FAIL', `${url} unreachable (${reason}): is the hub (or the broker) running, and is mqtt.url right?`);
}

/**
 * The subscriptions the agent makes, which the broker refused (SUBACK 0x80), and whether the
 * login can be the agent's at all: an agent reads only topics under its own name, its login
 * name. (mosquitto grants a subscription its ACL denies and delivers nothing on it, so the name
 * is what tells there.) `username` is undefined for a client certificate or anonymous login.
 */
export function subscriptionVerdict(id: string, username: string | undefined, filters: readonly string[], refused: readonly string[]): Check {
  const problems = [
    ...(refused.length ? [`the broker refused ${refused.join(', ')}`] : []),
    ...(username !== undefined && username !== id ? [`this login is ${username} but the agent's id is ${id}: an agent may read only the topics under its own name`] : []),
  ];
  if (problems.length === 0) return check('subscriptions', 'ok', `${filters.length} filter(s) the agent subscribes to are allowed`);
  return check('subscriptions', 'FAIL', `${problems.join('; ')}: log in with the account named by the agent's id (\`pushfleet users add ${id} --role agent\` on the hub)`);
}

/** Refs from `git ls-remote --heads|--tags` output, without the peeled `^{}` duplicates. */
export function parseLsRemote(output: string, prefix: 'refs/heads/' | 'refs/tags/'): string[] {
  const names = new Set<string>();
  for (const line of output.split('\n')) {
    const ref = line.split('\t')[1]?.trim();
    if (ref?.startsWith(prefix)) names.add(ref.slice(prefix.length).replace(/\^\{\}$/, ''));
  }
  return [...names];
}

/** The remote answered with `refs`: does the branch or tag the app follows exist there? */
export function refVerdict(app: Follows & { name: string }, refs: readonly string[]): Check {
  const kind = app.branch !== undefined ? 'branch' : 'tag';
  const wanted = (app.branch ?? app.tag)!;
  const matches = refs.filter((name) => appFollowsPush(app, { repo: app.repo, deleted: false, branch: kind === 'branch' ? name : null, tag: kind === 'tag' ? name : null }));
  const name = `app ${app.name} ${kind}`;
  if (matches.length === 0) return check(name, 'FAIL', `no ${kind} matching "${wanted}" on the remote (it has ${refs.length} ${kind === 'branch' ? 'branches' : 'tags'}): push it, or fix "${kind}"`);
  const shown = matches.length > 3 ? `${matches.slice(0, 3).join(', ')}, … (${matches.length})` : matches.join(', ');
  return check(name, 'ok', `${kind} "${wanted}" on the remote: ${shown}`);
}

/** What is at an app's path. */
export type PathFacts =
  | { kind: 'work-tree'; head: string | null }
  | { kind: 'not-directory' }
  | { kind: 'not-git'; entries: number; writable: boolean }
  /** Nothing there yet: `ancestor` is the nearest existing directory, where the agent creates the path. */
  | { kind: 'missing'; ancestor: string; writable: boolean };

export function pathVerdict(app: { name: string; path: string }, facts: PathFacts): Check {
  const name = `app ${app.name} path`;
  switch (facts.kind) {
    case 'work-tree':
      return check(name, 'ok', `${app.path} is a git work tree${facts.head ? ` at ${facts.head.slice(0, 12)}` : ' (nothing checked out yet)'}`);
    case 'not-directory':
      return check(name, 'FAIL', `${app.path} exists and is not a directory: point "path" elsewhere`);
    case 'not-git':
      if (facts.entries > 0) return check(name, 'FAIL', `${app.path} is not empty and not a git work tree: the agent will not clone into it; empty it or point "path" elsewhere`);
      return facts.writable ? check(name, 'ok', `${app.path} is empty: the agent clones into it on the first push`) : check(name, 'FAIL', `${app.path} is empty but not writable by this user: the agent cannot clone into it`);
    case 'missing':
      return facts.writable
        ? check(name, 'ok', `${app.path} does not exist yet: the agent clones it on the first push (${facts.ancestor} is writable)`)
        : check(name, 'FAIL', `${app.path} does not exist and ${facts.ancestor} is not writable by this user: create it for the agent's account, or point "path" elsewhere`);
  }
}

/** The hub's key as the agent would load it; `loaded` is its key id, or why it could not be used. */
export function hubKeyVerdict(cfg: { hubPublicKey?: string; acceptUnsigned: boolean }, loaded: { kid: string } | { error: string } | null): Check {
  const name = 'hub key';
  if (cfg.hubPublicKey === undefined) {
    return cfg.acceptUnsigned
      ? check(name, 'warn', 'no hubPublicKey and acceptUnsigned: true: nothing is verified; anyone who may publish on the broker can deploy here')
      : check(name, 'FAIL', "hubPublicKey: not set: copy the hub's hub.pub (in its state dir) here and name it, or the agent will not start");
  }
  if (!loaded || 'error' in loaded) return check(name, 'FAIL', `hubPublicKey: cannot use ${cfg.hubPublicKey}: ${loaded?.error ?? 'not read'}`);
  if (cfg.acceptUnsigned) return check(name, 'warn', `${cfg.hubPublicKey} (key ${loaded.kid}) loads, but acceptUnsigned: true acts on unsigned messages too`);
  return check(name, 'ok', `${cfg.hubPublicKey} holds the Ed25519 key ${loaded.kid}`);
}

/**
 * Above this the clock is off: a host kept by NTP is within milliseconds, so a second means no
 * time sync is running, and it will drift further.
 */
export const CLOCK_WARN_MS = 1000;
/**
 * Above this it fails: the hub's signed messages are refused beyond 5 minutes
 * (FUTURE_TOLERANCE_MS, DEFAULT_MAX_AGE_MS), and playbook starts lean on the offset; 30 s leaves
 * room for an unsynchronised clock's drift before that line is crossed.
 */
export const CLOCK_FAIL_MS = 30_000;

/** The measured offset (hub − this host); judged by its lower bound, so a slow link raises no alarm on its own. */
export function clockVerdict(estimate: ClockEstimate | null): Check {
  const name = 'clock';
  if (!estimate) return check(name, 'warn', 'the hub did not answer clock pings (its orchestrator engine may be off): offset unknown');
  const off = Math.abs(estimate.offsetMs);
  const atLeast = Math.max(0, off - estimate.errorMs);
  const said = `offset to the hub ${formatMs(estimate.offsetMs)} (±${formatMs(estimate.errorMs)}, ${estimate.samples} sample(s))`;
  if (atLeast > CLOCK_FAIL_MS) return check(name, 'FAIL', `${said}: more than ${CLOCK_FAIL_MS / 1000} s; signed messages are refused beyond 300 s: run NTP (systemd-timesyncd, chrony) on both hosts`);
  if (atLeast > CLOCK_WARN_MS) return check(name, 'warn', `${said}: more than ${CLOCK_WARN_MS / 1000} s: is NTP running on both hosts?`);
  return check(name, 'ok', said);
}

const formatMs = (ms: number): string => (Math.abs(ms) >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(1)} ms`);

/** `systemctl show -p LoadState -p ActiveState -p SubState` output, or null when systemd does not run this host. */
export function systemdVerdict(unit: string, shown: string | null): Check {
  const name = 'systemd';
  if (shown === null) return check(name, 'skip', `no systemd on this host (a container or CI): ${unit} not checked`);
  const props = Object.fromEntries(shown.split('\n').map((line) => line.split('=', 2) as [string, string]));
  const { LoadState: load, ActiveState: active, SubState: sub } = props;
  if (load === 'not-found') return check(name, 'warn', `${unit} is not installed: see systemd/README.md`);
  if (active === 'active') return check(name, 'ok', `${unit} is active (${sub})`);
  if (active === 'failed') return check(name, 'FAIL', `${unit} failed: \`journalctl -u ${unit} -n 50\` says why`);
  if (active === 'inactive') return check(name, 'warn', `${unit} is not running: \`systemctl enable --now ${unit}\` starts it`);
  return check(name, 'warn', `${unit} is ${active ?? 'unknown'}${sub ? ` (${sub})` : ''}`);
}

/** What is at a directory's path; `missing` as in PathFacts. */
export type DirFacts = { kind: 'directory'; writable: boolean } | Extract<PathFacts, { kind: 'not-directory' | 'missing' }>;

/** A directory the service writes (the hub's stateDir): there and writable, or creatable. */
export function stateDirVerdict(dir: string, facts: DirFacts): Check {
  const name = 'state dir';
  switch (facts.kind) {
    case 'directory':
      return facts.writable ? check(name, 'ok', `${dir} is writable`) : check(name, 'FAIL', `${dir} is not writable by this user: run the hub as its owner (the unit's User=)`);
    case 'not-directory':
      return check(name, 'FAIL', `${dir} exists and is not a directory: fix stateDir`);
    case 'missing':
      return facts.writable
        ? check(name, 'ok', `${dir} does not exist yet: the hub creates it at its first start`)
        : check(name, 'FAIL', `${dir} does not exist and ${facts.ancestor} is not writable by this user: create it for the hub's account, or fix stateDir`);
  }
}

/** What listening on a port the hub needs found: free, taken (by the running hub, if it answered), or an error. */
export type PortFacts = { free: true } | { free: false; hubAnswers: boolean } | { error: string };

export function portVerdict(what: string, key: string, address: string, facts: PortFacts): Check {
  const name = `${what} port`;
  if ('error' in facts) return check(name, 'FAIL', `cannot listen on ${address} (${facts.error}): fix ${key}`);
  if (facts.free) return check(name, 'ok', `${address} is free for the hub`);
  if (facts.hubAnswers) return check(name, 'ok', `${address} is in use by the running hub (it answers /healthz)`);
  return check(name, 'FAIL', `${address} is taken by another process: stop it or change ${key}`);
}
