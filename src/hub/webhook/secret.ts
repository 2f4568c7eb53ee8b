import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';

export type SecretSource = 'config' | 'environment' | 'state' | 'generated';

/**
 * The hub never accepts unverified pushes: without a configured secret it uses the one kept in
 * the state directory, generating it (mode 0600) on first start.
 */
export function resolveWebhookSecret(
  configured: string | undefined,
  stateDir: string,
): { secret: string; source: SecretSource; file?: string } {
  if (configured) return { secret: configured, source: 'config' };
  const fromEnv = process.env.PUSHFLEET_WEBHOOK_SECRET;
  if (fromEnv) return { secret: fromEnv, source: 'environment' };
  const file = join(stateDir, 'webhook-secret');
  try {
    const stored = readFileSync(file, 'utf8').trim();
    if (stored) return { secret: stored, source: 'state', file };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const secret = randomBytes(32).toString('hex');
  writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return { secret, source: 'generated', file };
}
