import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { mosquittoAcl, type AclUser } from '../../src/shared/contract/mosquitto-acl.js';
import type { Role } from '../../src/shared/contract/roles.js';
import { TopicContract } from '../../src/shared/contract/topic-table.js';
import { acceptsConnections, freePort } from './ports.js';
import { waitFor } from './wait.js';

export type BrokerUser = { username: string; password: string; role: Role; /** The broker URL with these credentials in it. */ url: string };

export type ExternalBroker = {
  /** Without credentials. */
  url: string;
  port: number;
  /** Whether clients must log in, and each user is held to its role's ACL. */
  auth: boolean;
  /**
   * The credentials of user `name` in `role`, made on first ask: the password file and the ACL
   * generated from the topic table are rewritten, mosquitto reloads them (SIGHUP), and this
   * resolves once the user can log in. Without auth: the plain URL, no password.
   */
  user(name: string, role: Role): Promise<BrokerUser>;
  stop(): Promise<void>;
  /** SIGSTOP: the process holds its sockets open but reads and answers nothing (a stalled broker). */
  pause(): void;
  /** SIGCONT after `pause`. */
  resume(): void;
};

export type MosquittoOptions = {
  /** Passwords (mosquitto_passwd) and the ACL generated from the topic table; users `hub` and `operator` exist from the start. */
  auth?: boolean;
  /** The whole config instead of the generated one, for a listener on `port`; files it names may be written to `dir` here. */
  config?: (at: { port: number; dir: string }) => string;
};

function mosquittoBinary(): string {
  const found = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/sbin/mosquitto'].find(existsSync);
  if (!found) throw new Error('mosquitto is not installed (apt-get install mosquitto); .ci/run installs it');
  return found;
}

/** Run as root, mosquitto drops to user `mosquitto`, which cannot read a private temp dir: stay who we are. */
export const STAY = `user ${userInfo().username}`;

/** Brokers with auth by port, so support code handed only a URL can log in as the right user. */
const withAuth = new Map<number, ExternalBroker>();

/** The auth-enabled test mosquitto listening at `url`'s port, if any. */
export function authBrokerAt(url: string): ExternalBroker | undefined {
  const port = Number(new URL(url).port);
  return withAuth.get(port);
}

/**
 * `url` logged in as the hub itself when it names a test broker with an ACL, else `url`: for a
 * client a test lets publish what the ACL keeps to the hub (forged or malformed messages that the
 * hub or an agent must refuse by itself).
 */
export async function unrestrictedUrl(url: string): Promise<string> {
  const broker = authBrokerAt(url);
  return broker ? (await broker.user('hub', 'hub')).url : url;
}

/** A real mosquitto process on a free loopback port, with its own config in a temp dir. */
export async function startMosquitto(opts: MosquittoOptions = {}): Promise<ExternalBroker> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'pushfleet-mosquitto-'));
  const conf = join(dir, 'mosquitto.conf');
  const passwd = join(dir, 'passwd');
  const aclFile = join(dir, 'acl');
  const url = `mqtt://127.0.0.1:${port}`;
  const users = new Map<string, BrokerUser>();
  const contract = new TopicContract();
  const writeAuthFiles = (add: { name: string; role: Role; password: string }) => {
    execFileSync('mosquitto_passwd', [...(existsSync(passwd) ? [] : ['-c']), '-b', passwd, add.name, add.password], { stdio: 'pipe' });
    const acl: AclUser[] = [...users.values()].map((u) => ({ name: u.username, role: u.role }));
    writeFileSync(aclFile, mosquittoAcl(contract, [...acl, { name: add.name, role: add.role }]));
  };
  const credentials = (name: string, role: Role, password: string): BrokerUser => ({ username: name, password, role, url: `mqtt://${name}:${password}@127.0.0.1:${port}` });
  if (opts.auth) {
    for (const [name, role] of [['hub', 'hub'], ['operator', 'operator']] as const) {
      const password = randomBytes(12).toString('hex');
      writeAuthFiles({ name, role, password });
      users.set(name, credentials(name, role, password));
    }
  }
  const access = `${STAY}\n` + (opts.auth ? `allow_anonymous false\npassword_file ${passwd}\nacl_file ${aclFile}\n` : 'allow_anonymous true\n');
  writeFileSync(conf, opts.config?.({ port, dir }) ?? `listener ${port} 127.0.0.1\n${access}set_tcp_nodelay true\npersistence false\nlog_dest stderr\nlog_type error\n`);
  const child = spawn(mosquittoBinary(), ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitFor(() => `mosquitto on port ${port} (${stderr})`, async () => child.exitCode === null && (await acceptsConnections(port)), 10_000);

  // One reload at a time: agents of one test start side by side.
  let adding: Promise<unknown> = Promise.resolve();
  const addUser = async (name: string, role: Role): Promise<BrokerUser> => {
    const password = randomBytes(12).toString('hex');
    writeAuthFiles({ name, role, password });
    child.kill('SIGHUP');
    const user = credentials(name, role, password);
    await waitFor(() => `mosquitto to take user ${name} after SIGHUP (${stderr})`, () => canLogIn(user), 10_000);
    users.set(name, user);
    return user;
  };
  const broker: ExternalBroker = {
    url,
    port,
    auth: opts.auth === true,
    user(name, role) {
      if (!opts.auth) return Promise.resolve({ username: name, password: '', role, url });
      const known = users.get(name);
      if (known) {
        if (known.role !== role) return Promise.reject(new Error(`test broker user ${name} has role ${known.role}, not ${role}`));
        return Promise.resolve(known);
      }
      const added = adding.then(() => users.get(name) ?? addUser(name, role));
      adding = added.catch(() => undefined);
      return added;
    },
    pause() {
      child.kill('SIGSTOP');
    },
    resume() {
      child.kill('SIGCONT');
    },
    async stop() {
      withAuth.delete(port);
      // A stopped process does not act on SIGTERM until continued.
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGCONT');
        child.kill('SIGTERM');
      }
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
  if (opts.auth) withAuth.set(port, broker);
  return broker;
}

async function canLogIn(user: BrokerUser): Promise<boolean> {
  try {
    const c = await mqtt.connectAsync(user.url, { reconnectPeriod: 0, connectTimeout: 2000 });
    await c.endAsync(true);
    return true;
  } catch {
    return false;
  }
}
