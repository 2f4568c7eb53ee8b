import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writePrivateFile } from '../../shared/private-file.js';
import { generateCredential } from './password-hash.js';
import { newUser, readUsers, writeUsers } from './users-file.js';

export const OPERATOR = 'operator';
export const operatorCredentialsFile = (stateDir: string): string => join(stateDir, 'operator.credentials');

export const OperatorCredentials = z.object({ username: z.string().min(1), password: z.string().min(1) }).strict();
export type OperatorCredentials = z.infer<typeof OperatorCredentials>;

/**
 * The zero-setup account: when the users file has no `operator`, the hub makes one with a
 * generated password and keeps it in `<stateDir>/operator.credentials` (mode 0600), where CLI
 * commands on this host find it. The credentials file is written before the account exists, so a
 * crash in between leaves a password nobody can use, which the next start replaces.
 * Removing `operator` from the users file and restarting the hub rotates it.
 */
export async function ensureOperator(usersFile: string, stateDir: string): Promise<{ created: false; file: string } | { created: true; file: string; password: string }> {
  const file = operatorCredentialsFile(stateDir);
  if (readUsers(usersFile).has(OPERATOR)) return { created: false, file };
  const { password, hash } = generateCredential();
  writePrivateFile(file, `${JSON.stringify({ username: OPERATOR, password } satisfies OperatorCredentials)}\n`);
  const users = readUsers(usersFile);
  users.set(OPERATOR, newUser('operator', hash));
  writeUsers(usersFile, users);
  return { created: true, file, password };
}

/** The operator credentials kept in `stateDir`, or undefined when there are none this user can read. */
export function readOperatorCredentials(stateDir: string): OperatorCredentials | undefined {
  let text: string;
  try {
    text = readFileSync(operatorCredentialsFile(stateDir), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = OperatorCredentials.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
