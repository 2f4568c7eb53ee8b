import { spawn } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The reference deploy-latency compares pushfleet with: what adnanh/webhook does with a plain
 * hook script. A minimal HTTP server checks the push's `X-Hub-Signature-256` (its
 * `payload-hmac-sha256` rule), answers at once (webhook's default) and runs the script with the
 * pushed SHA: the agent's git work on a working copy cloned once, then the same restart argv.
 */
const SCRIPT = `#!/bin/sh
set -e
sha=$1
shift
cd "$HOOK_WORKDIR"
git fetch --no-tags --quiet --negotiation-tip=HEAD "$HOOK_REMOTE" "$sha"
git -c advice.detachedHead=false checkout --quiet --force --detach "$sha"
PUSHFLEET_SHA=$sha exec "$@"
`;

export type ScriptHook = {
  url: string;
  /** Resolves when the script run for `sha` has ended (rejects if it failed). */
  finished(sha: string): Promise<void>;
  close(): Promise<void>;
};

/** Whether `header` is the HMAC-SHA256 of `body` under `secret`, compared in constant time. */
export function signatureMatches(secret: string, body: Buffer, header: string | undefined): boolean {
  const want = Buffer.from(`sha256=${createHmac('sha256', secret).update(body).digest('hex')}`);
  const got = Buffer.from(header ?? '');
  return got.length === want.length && timingSafeEqual(got, want);
}

export async function startScriptHook(opts: { dir: string; port: number; secret: string; workdir: string; remote: string; restart: readonly string[]; env: NodeJS.ProcessEnv }): Promise<ScriptHook> {
  const script = join(opts.dir, 'deploy-hook.sh');
  writeFileSync(script, SCRIPT, { mode: 0o755 });
  const runs = new Map<string, Promise<void>>();
  const run = (sha: string) =>
    new Promise<void>((resolve, reject) => {
      const child = spawn('/bin/sh', [script, sha, ...opts.restart], { env: { ...process.env, ...opts.env, HOOK_WORKDIR: opts.workdir, HOOK_REMOTE: opts.remote }, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`hook script for ${sha} exited ${code}: ${err.trim()}`))));
    });
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (!signatureMatches(opts.secret, body, req.headers['x-hub-signature-256'] as string | undefined)) return void res.writeHead(403).end('bad signature\n');
      const sha = (JSON.parse(body.toString('utf8')) as { after?: unknown }).after;
      if (typeof sha !== 'string' || !/^[0-9a-f]{40}$/.test(sha)) return void res.writeHead(400).end('no SHA\n');
      const p = run(sha);
      p.catch(() => undefined);
      runs.set(sha, p);
      res.writeHead(200).end('hook started\n');
    });
  });
  await new Promise<void>((resolve) => server.listen(opts.port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${opts.port}/hooks/deploy`,
    finished: (sha) => runs.get(sha) ?? Promise.reject(new Error(`no hook run for ${sha}`)),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
