import { writeFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { join } from 'node:path';
import { generateCredential } from '../../src/hub/users/password-hash.js';
import { defaultUsersFile, newUser, readUsers, writeUsers } from '../../src/hub/users/users-file.js';
import type { Role } from '../../src/shared/contract/roles.js';

/**
 * The embedded broker refuses anonymous clients, so test hubs get accounts: `harness` (role hub:
 * the tests' own clients publish and read what they like, as the tests did before auth), and an
 * agent account per agent a test starts. Each hub's users file is remembered by its broker
 * address, so `startAgentProcess` can give an agent its own account from the URL alone.
 */
const usersFiles = new Map<string, string>();

const passwords = new Map<string, string>();

/**
 * `name`'s password, the account added the first time: a hub started again on the same state
 * dir, or an agent started again as the same machine, keeps its account (a new password would
 * also close the sessions of an old process that still runs).
 */
async function keptUser(file: string, name: string, role: Role): Promise<string> {
  const key = `${file}\u0000${name}`;
  let password = passwords.get(key);
  if (password === undefined || !readUsers(file).has(name)) passwords.set(key, (password = await addBrokerUser(file, name, role)));
  return password;
}

export const HARNESS = 'harness';

const brokerKey = (url: string): string => new URL(url).host;

/** Adds (or replaces) `name` in `file`; returns its password. */
export async function addBrokerUser(file: string, name: string, role: Role): Promise<string> {
  const { password, hash } = generateCredential();
  // Read and written with no await between: agents started at once do not lose each other's account.
  const users = readUsers(file);
  users.set(name, newUser(role, hash));
  writeUsers(file, users);
  return password;
}

/** The broker URL without any user:pass, as the agent and the hub show it. */
export function withoutCredentials(url: string): string {
  const u = new URL(url);
  u.username = '';
  u.password = '';
  return u.toString();
}

export function withCredentials(url: string, username: string, password: string): string {
  const u = new URL(withoutCredentials(url));
  u.username = encodeURIComponent(username);
  u.password = encodeURIComponent(password);
  return u.toString();
}

/** Before a hub's first start: its users file gets `harness`; returns the broker URL logged in as it. */
export async function harnessUrl(stateDir: string, brokerUrl: string, usersFile = defaultUsersFile(stateDir)): Promise<string> {
  usersFiles.set(brokerKey(brokerUrl), usersFile);
  return withCredentials(brokerUrl, HARNESS, await keptUser(usersFile, HARNESS, 'hub'));
}

/** The users file of the test hub whose broker is at `url`, if it is one of this file's. */
export function usersFileFor(url: string): string | undefined {
  return usersFiles.get(brokerKey(url));
}

/** A URL for `url`'s broker logged in as the account a running agent (or the harness) already has: what stealing its password gives. */
export function existingUserUrl(url: string, name: string): string {
  const password = passwords.get(`${usersFileFor(url)}\u0000${name}`);
  if (password === undefined) throw new Error(`no test account ${name} on ${new URL(url).host}`);
  return withCredentials(url, name, password);
}

/** A URL for `url`'s broker logged in as a new account `name` with `role`. */
export async function userUrl(url: string, name: string, role: Role): Promise<string> {
  const file = usersFileFor(url);
  if (!file) throw new Error(`no test hub users file for ${new URL(url).host}`);
  return withCredentials(url, name, await addBrokerUser(file, name, role));
}

/**
 * The `mqtt:` section of an agent's config: on a test hub's embedded broker, the agent's own
 * account (named by its id, password in a file in `dir`); elsewhere the URL as given.
 */
export async function agentMqttSection(url: string, id: string, dir: string): Promise<Record<string, unknown>> {
  const file = usersFileFor(url);
  if (!file) return { url };
  const passwordFile = join(dir, 'mqtt-password');
  const password = await keptUser(file, id, 'agent');
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  return { url: withoutCredentials(url), username: id, passwordFile };
}

/**
 * Connects as an account just added to a running hub's users file: its broker reads the file
 * every 0.5 s, so a login refused as unknown (CONNACK 4 or 5) is tried again for `timeoutMs`.
 */
export async function connectWhenKnown(url: string, opts: IClientOptions = {}, timeoutMs = 10_000): Promise<MqttClient> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await mqtt.connectAsync(url, { ...opts, reconnectOnConnackError: false });
    } catch (err) {
      if (![4, 5].includes((err as { code?: number }).code!) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
