import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyFiles, loadSigningKey, PRIVATE_KEY_FILE, publicKeyFileFor, type SigningKey } from '../shared/signing/keys.js';
import { StartupError } from '../shared/startup.js';

export type SigningSettings = { enabled: boolean; key?: string };

export type ResolvedSigningKey = { key: SigningKey; file: string; pubFile: string; source: 'config' | 'state' | 'generated' };

/**
 * The hub's signing key: `signing.key` when configured (it must exist: a typo must not silently
 * make a new key agents do not know), else `<stateDir>/hub.key`, generated on first start.
 */
export function resolveSigningKey(signing: SigningSettings, stateDir: string): ResolvedSigningKey {
  const configured = signing.key !== undefined;
  const file = signing.key ?? join(stateDir, PRIVATE_KEY_FILE);
  let source: ResolvedSigningKey['source'] = configured ? 'config' : 'state';
  if (!configured && !existsSync(file)) {
    generateKeyFiles(file);
    source = 'generated';
  }
  try {
    return { key: loadSigningKey(file), file, pubFile: publicKeyFileFor(file), source };
  } catch (err) {
    const hint = configured ? ' (make one with `pushfleet keys init`)' : '';
    throw new StartupError(`signing.key: cannot use ${file}: ${(err as Error).message}${hint}`, 2);
  }
}
