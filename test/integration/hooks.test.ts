import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { decode, PushMessage, ZERO_SHA } from '../../src/shared/messages.js';
import { headTopic, pushTopic } from '../../src/shared/topics.js';
import { open } from '../../src/shared/signing/envelope.js';
import { loadVerifyKey } from '../../src/shared/signing/keys.js';
import { hubKeyFor } from '../support/signer.js';
import { Cleanup } from '../support/cleanup.js';
import { CLI } from '../support/cli-process.js';
import { freePort } from '../support/ports.js';
import { runProcess, show } from '../support/run-process.js';
import { startTestHub, watch } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

const HOOKS = fileURLToPath(new URL('../../hooks/', import.meta.url));
const hook = (name: string) => join(HOOKS, name);

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const tempDir = (prefix = 'pushfleet-hooks-') => cleanup.tempDir(prefix);

const GIT_ENV = { GIT_AUTHOR_NAME: 'Ada', GIT_AUTHOR_EMAIL: 'ada@example.com', GIT_COMMITTER_NAME: 'Ada', GIT_COMMITTER_EMAIL: 'ada@example.com' };
const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, ...GIT_ENV } }).trim();

/**
 * A self-hosted "server": a bare repository with hooks/post-receive installed the way the README
 * says (a symlink), an author clone to push from, and a `pushfleet` wrapper for PUSHFLEET_BIN.
 */
function selfHostedRepo(opts: { repoName?: string } = {}) {
  const root = tempDir();
  const bare = join(root, 'web.git');
  const work = join(root, 'author');
  git(root, 'init', '--quiet', '--bare', '--initial-branch=main', bare);
  symlinkSync(hook('post-receive'), join(bare, 'hooks', 'post-receive'));
  if (opts.repoName) git(bare, 'config', 'pushfleet.repo', opts.repoName);
  git(root, 'init', '--quiet', '--initial-branch=main', work);
  git(work, 'remote', 'add', 'origin', bare);
  mkdirSync(join(root, 'bin'));
  const bin = join(root, 'bin', 'pushfleet');
  writeFileSync(bin, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`, { mode: 0o755 });

  const commit = (message: string) => {
    writeFileSync(join(work, 'app.txt'), `${message}\n`);
    git(work, 'add', '-A');
    git(work, 'commit', '--quiet', '-m', message);
    return git(work, 'rev-parse', 'HEAD');
  };
  /** A real `git push`; the hook's output comes back on stderr as "remote: …". */
  const push = async (env: NodeJS.ProcessEnv, ...args: string[]) => {
    const result = await runProcess('git', ['push', 'origin', ...args], { cwd: work, env: { ...process.env, ...GIT_ENV, ...env } });
    expect(result.code, show(result)).toBe(0);
    return result;
  };
  return { bare, bin, commit, push };
}

describe('hooks/post-receive', () => {
  it('publishes each pushed branch and tag as a push message, and a deleted branch clears its head', async () => {
    const hub = await startTestHub(cleanup, 'aedes');
    const events = await watch(cleanup, hub.mqttUrl, pushTopic('acme/web'));
    const heads = await watch(cleanup, hub.mqttUrl, 'pushfleet/heads/acme/web/+');
    const repo = selfHostedRepo({ repoName: 'acme/web' });
    const env = { PUSHFLEET_BIN: repo.bin, PUSHFLEET_MQTT_URL: hub.mqttUrl };
    const pushes = () => events.messages.map((m) => decode(PushMessage, m.payload));
    const nthPush = async (n: number) => {
      const d = await waitFor(() => `push message #${n + 1}; got ${JSON.stringify(events.messages)}`, () => pushes()[n]);
      expect(d.ok, JSON.stringify(d)).toBe(true);
      return (d as { ok: true; value: PushMessage }).value;
    };

    // A new branch: created, before = zeros.
    const sha1 = repo.commit('first');
    const first = await repo.push(env, 'main');
    expect(first.stderr).toContain(`published refs/heads/main ${sha1} of acme/web`);
    expect(await nthPush(0)).toMatchObject({
      source: 'post-receive', repo: 'acme/web', ref: 'refs/heads/main', refType: 'branch', branch: 'main',
      before: ZERO_SHA, after: sha1, created: true, deleted: false, forced: false,
      headCommit: { id: sha1, message: 'first', author: { name: 'Ada', email: 'ada@example.com' } },
    });

    // A fast-forward.
    const sha2 = repo.commit('second');
    await repo.push(env, 'main');
    const second = await nthPush(1);
    expect(second).toMatchObject({ ref: 'refs/heads/main', before: sha1, after: sha2, created: false, forced: false });

    // The head is retained: a client connecting now still gets the newest push of main.
    const late = await watch(cleanup, hub.mqttUrl, headTopic('acme/web', 'refs/heads/main'));
    const retained = await waitFor('retained head of main', () => late.messages[0]);
    expect(retained.retain).toBe(true);
    // Published by the hub, which signed it: notify itself may not publish heads.
    const opened = open([loadVerifyKey(hubKeyFor(hub.mqttUrl)!)], Buffer.from(retained.payload));
    expect(opened.ok, JSON.stringify(opened)).toBe(true);
    expect(decode(PushMessage, (opened as { payload: Buffer }).payload)).toMatchObject({ ok: true, value: { deliveryId: second.deliveryId, after: sha2 } });

    // A branch and a (lightweight) tag in one push: one message each.
    git(join(repo.bare, '..', 'author'), 'tag', 'v1');
    await repo.push(env, 'main:refs/heads/feature', 'v1');
    const [a, b] = [await nthPush(2), await nthPush(3)];
    expect([a, b].map((p) => [p.ref, p.after]).sort()).toEqual([['refs/heads/feature', sha2], ['refs/tags/v1', sha2]]);
    expect([a, b].find((p) => p.ref === 'refs/tags/v1')).toMatchObject({ refType: 'tag', tag: 'v1', branch: null });

    // Deleting the branch publishes deleted: true and empties its retained head.
    const deleting = await repo.push(env, '--delete', 'feature');
    expect(deleting.stderr).toContain(`published refs/heads/feature ${ZERO_SHA}`);
    expect(await nthPush(4)).toMatchObject({ ref: 'refs/heads/feature', before: sha2, after: ZERO_SHA, deleted: true, created: false, headCommit: null });
    const featureHead = headTopic('acme/web', 'refs/heads/feature');
    await waitFor(`empty retained publish on ${featureHead}; got ${JSON.stringify(heads.messages)}`, () => heads.messages.find((m) => m.topic === featureHead && m.payload === ''));
    // A new subscriber gets main's retained head and nothing for the deleted branch.
    const after = await watch(cleanup, hub.mqttUrl, 'pushfleet/heads/acme/web/+');
    await waitFor('retained heads after the delete', () => after.messages.find((m) => m.topic === headTopic('acme/web', 'refs/heads/main')));
    await waitFor('retained head of the tag', () => after.messages.find((m) => m.topic === headTopic('acme/web', 'refs/tags/v1')));
    expect(after.messages.filter((m) => m.topic === featureHead)).toEqual([]);
  });

  it('never rejects the push: an unconfigured repository name is a clear warning', async () => {
    const repo = selfHostedRepo();
    repo.commit('first');
    const result = await repo.push({ PUSHFLEET_BIN: repo.bin, PUSHFLEET_MQTT_URL: 'mqtt://127.0.0.1:1' }, 'main');
    expect(result.stderr).toContain('pushfleet: WARNING');
    expect(result.stderr).toContain('config pushfleet.repo owner/name');
  });

  it('never rejects the push: an unreachable broker is a clear warning, without the password', async () => {
    const repo = selfHostedRepo({ repoName: 'acme/web' });
    repo.commit('first');
    const nobody = `mqtt://git:s3cret-pass@127.0.0.1:${await freePort()}`;
    const result = await repo.push({ PUSHFLEET_BIN: repo.bin, PUSHFLEET_MQTT_URL: nobody }, 'main');
    expect(result.stderr).toMatch(/pushfleet: WARNING: could not publish refs\/heads\/main/);
    expect(result.stderr).toContain('to retry, with the same PUSHFLEET_MQTT_* environment');
    expect(result.stderr).not.toContain('s3cret-pass');
  });

  it('says so when it cannot find pushfleet', async () => {
    const repo = selfHostedRepo({ repoName: 'acme/web' });
    repo.commit('first');
    const result = await repo.push({ PUSHFLEET_BIN: join(repo.bare, 'no-such-pushfleet') }, 'main');
    expect(result.stderr).toContain('is not an executable file');
  });
});

describe('hooks/http-health', () => {
  async function server(status: number): Promise<string> {
    const srv: Server = createServer((_req, res) => res.writeHead(status).end('hello'));
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    cleanup.defer(() => new Promise((resolve) => srv.close(resolve)));
    return `http://127.0.0.1:${(srv.address() as { port: number }).port}/healthz`;
  }

  it('exits 0 when the URL answers 2xx', async () => {
    const r = await runProcess(hook('http-health'), [await server(204), '5']);
    expect(r.code, show(r)).toBe(0);
  });

  it('accepts an exact expected status', async () => {
    const r = await runProcess(hook('http-health'), [await server(503), '5', '503']);
    expect(r.code, show(r)).toBe(0);
  });

  it('exits 1 when the URL keeps answering 500 until the timeout', async () => {
    const r = await runProcess(hook('http-health'), [await server(500), '1']);
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).toContain('last status: 500');
  });

  it('exits 1 when nothing listens', async () => {
    const r = await runProcess(hook('http-health'), [`http://127.0.0.1:${await freePort()}/`, '1']);
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).toContain('last status: 000');
  });

  it.each([[[]], [['not-a-url']], [['http://x/', '0']], [['http://x/', 'soon']], [['http://x/', '1', '2xy']], [['http://x/', '1', '200', 'extra']]])('exits 2 on bad usage %j', async (args) => {
    const r = await runProcess(hook('http-health'), args);
    expect(r.code, show(r)).toBe(2);
    expect(r.stderr).toContain('usage:');
  });
});

describe('hooks/npm-build', () => {
  function app(scripts: Record<string, string>, lockfile = true): string {
    const dir = tempDir('pushfleet-npm-');
    const pkg = { name: 'tiny-app', version: '1.0.0', private: true, scripts };
    writeFileSync(join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
    if (lockfile) writeFileSync(join(dir, 'package-lock.json'), JSON.stringify({ name: pkg.name, version: pkg.version, lockfileVersion: 3, requires: true, packages: { '': { name: pkg.name, version: pkg.version } } }, null, 2));
    return dir;
  }
  // As the agent runs it under systemd: NODE_ENV=production, the app's env, cwd = working copy.
  const agentEnv = { ...process.env, NODE_ENV: 'production', PUSHFLEET_APP: 'web', PUSHFLEET_SHA: 'a'.repeat(40), npm_config_update_notifier: 'false' };
  const writes = (file: string) => `node -e "require('fs').writeFileSync('${file}', process.env.PUSHFLEET_SHA)"`;

  it('installs and runs the build script', async () => {
    const dir = app({ build: writes('built.txt') });
    const r = await runProcess(hook('npm-build'), [], { cwd: dir, env: agentEnv });
    expect(r.code, show(r)).toBe(0);
    expect(readFileSync(join(dir, 'built.txt'), 'utf8')).toBe('a'.repeat(40));
  });

  it('runs a named script, and skips a script package.json lacks', async () => {
    const dir = app({ 'build:prod': writes('prod.txt') });
    const named = await runProcess(hook('npm-build'), ['build:prod'], { cwd: dir, env: agentEnv });
    expect(named.code, show(named)).toBe(0);
    expect(existsSync(join(dir, 'prod.txt'))).toBe(true);
    const missing = await runProcess(hook('npm-build'), [], { cwd: dir, env: agentEnv });
    expect(missing.code, show(missing)).toBe(0);
    expect(missing.stdout).toContain('no "build" script');
  });

  it('fails without a lockfile, and on bad usage', async () => {
    const noLock = await runProcess(hook('npm-build'), [], { cwd: app({ build: 'true' }, false), env: agentEnv });
    expect(noLock.code, show(noLock)).toBe(1);
    expect(noLock.stderr).toContain('package-lock.json');
    const usage = await runProcess(hook('npm-build'), ['build', 'extra'], { env: agentEnv });
    expect(usage.code, show(usage)).toBe(2);
  });

  it('fails when the build fails', async () => {
    const r = await runProcess(hook('npm-build'), [], { cwd: app({ build: 'node -e "process.exit(3)"' }), env: agentEnv });
    expect(r.code, show(r)).toBe(1);
  });
});

describe('hooks/systemd-restart', () => {
  // Restarting needs systemd as PID 1; only the usage contract can be checked here.
  it.each([[[]], [['a.service', 'b.service']], [['--now']], [['']]])('exits 2 on bad usage %j', async (args) => {
    const r = await runProcess(hook('systemd-restart'), args);
    expect(r.code, show(r)).toBe(2);
    expect(r.stderr).toContain('usage:');
  });
});
