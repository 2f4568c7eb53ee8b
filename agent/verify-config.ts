import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { parseAllowedSigners } from './allowed-signers.js';

/** What a readable allowed-keys file must look like for its mode; the message names what is wrong. */
function problemWith(mode: 'ssh' | 'gpg', file: string): string | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
  }
  if (mode === 'gpg') return text.includes('-----BEGIN PGP PUBLIC KEY BLOCK-----') ? null : `${file} is not an armored OpenPGP public key file (gpg --armor --export <key>)`;
  try {
    parseAllowedSigners(text);
    return null;
  } catch (err) {
    return `${file}: ${(err as Error).message}`;
  }
}

/**
 * An app's `verify:` (like Flux's): every commit it deploys must be signed by one of the keys in
 * `allowedSigners`, an ssh allowed signers file (mode ssh) or armored OpenPGP public keys (mode
 * gpg). The file is checked at start-up and made absolute (git runs in the working copy).
 */
export const VerifyConfig = z
  .object({ mode: z.enum(['ssh', 'gpg']), allowedSigners: z.string().min(1) })
  .strict()
  .transform((v) => ({ ...v, allowedSigners: resolve(v.allowedSigners) }))
  .superRefine((v, ctx) => {
    const problem = problemWith(v.mode, v.allowedSigners);
    if (problem) ctx.addIssue({ code: 'custom', path: ['allowedSigners'], message: problem });
  });
export type VerifyConfig = z.infer<typeof VerifyConfig>;
