import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError, invalidConfig } from '../../shared/config-file.js';
import { ROLES, type Role } from '../../shared/contract/roles.js';
import { issueLines } from '../../shared/messages.js';
import { writePrivateFile } from '../../shared/private-file.js';
import { TOPIC_LEVEL } from '../../shared/topics.js';
import { PasswordHash } from './password-hash.js';

/** A broker account name; an agent's is its agent id, so both obey a topic level's rules. */
export const UserName = z.string().regex(TOPIC_LEVEL, 'use 1–128 letters, digits, ".", "_" or "-"');

export const UserEntry = z
  .object({
    role: z.enum(ROLES),
    password: PasswordHash,
    created: z.string(),
  })
  .strict();
export type UserEntry = z.infer<typeof UserEntry>;

export const UsersFile = z.object({ version: z.literal(1), users: z.record(UserName, UserEntry) }).strict();
export type UsersFile = z.infer<typeof UsersFile>;
export type Users = ReadonlyMap<string, UserEntry>;

export const defaultUsersFile = (stateDir: string): string => join(stateDir, 'users.json');

/** The users in `file`; none when it does not exist. A damaged file is a ConfigError naming it. */
export function readUsers(file: string): Map<string, UserEntry> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw new ConfigError(`cannot read the users file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`the users file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = UsersFile.safeParse(raw);
  if (!parsed.success) throw invalidConfig(`users file ${file}`, issueLines(parsed.error));
  return new Map(Object.entries(parsed.data.users));
}

/** Replaces `file` with `users`, atomically and mode 0600 (see writePrivateFile). */
export function writeUsers(file: string, users: Users): void {
  const body: UsersFile = { version: 1, users: Object.fromEntries([...users].sort(([a], [b]) => a.localeCompare(b))) };
  writePrivateFile(file, `${JSON.stringify(body, null, 2)}\n`);
}

export function newUser(role: Role, password: PasswordHash, now: Date = new Date()): UserEntry {
  return { role, password, created: now.toISOString() };
}
