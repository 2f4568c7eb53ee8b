import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { freePort } from '../support/ports.js';
import { runProcess, show, startService } from '../support/run-process.js';
import { waitFor } from '../support/wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; private?: boolean; scripts: Record<string, string> };

describe('the packed tarball, installed with npm install -g', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('puts a working pushfleet on the PATH: --version, agent --check and a hub that serves and stops on SIGTERM', async () => {
    expect(pkg.private, 'a package npm may pack and publish').toBeUndefined();
    const dir = cleanup.tempDir('pushfleet-install-');
    const prefix = join(dir, 'prefix');

    // dist/ is built (pretest); --ignore-scripts keeps prepack from rebuilding it under the tests running from it.
    const pack = await runProcess('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], { cwd: ROOT });
    expect(pack.code, show(pack)).toBe(0);
    const tarball = join(dir, `pushfleet-${pkg.version}.tgz`);
    expect(existsSync(tarball), show(pack)).toBe(true);

    // --prefer-offline: every dependency tarball is in npm's cache (npm ci put it there); only
    // metadata the cache lacks is asked of the registry. Scripts run as for a user: the native
    // modules install, and pushfleet's own `prepare` (tsc) must not run: TypeScript is not installed.
    const cache = await npmCacheWithPrebuild(dir);
    const install = await runProcess('npm', ['install', '-g', '--prefix', prefix, '--cache', cache, '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts', tarball], { cwd: dir });
    expect(install.code, show(install)).toBe(0);
    const installed = join(prefix, 'lib', 'node_modules', 'pushfleet');
    expect(`${install.stdout}${install.stderr}`).not.toMatch(/> tsc|run pushfleet@/);
    expect(existsSync(join(installed, 'node_modules', 'typescript'))).toBe(false);
    expect(readdirSync(installed).sort()).toEqual(['README.md', 'config', 'dist', 'hooks', 'node_modules', 'package.json', 'src', 'systemd']);

    const bin = join(prefix, 'bin', 'pushfleet');
    const version = await runProcess(bin, ['--version']);
    expect(version.code, show(version)).toBe(0);
    expect(version.stdout.trim()).toBe(pkg.version);

    // The shipped agent example, with its app working copies in the temp dir. Its hooks are
    // where an npm -g install puts them (/usr/lib/node_modules/pushfleet/hooks on Debian): here, below the prefix.
    const hooks = '/usr/lib/node_modules/pushfleet/hooks/';
    const example = readFileSync(join(installed, 'config', 'agent.example.yaml'), 'utf8');
    expect(example).toContain(hooks);
    for (const hook of new Set(example.match(/\/usr\/lib\/node_modules\/pushfleet\/hooks\/[\w-]+/g))) {
      accessSync(join(installed, 'hooks', hook.slice(hooks.length)), constants.X_OK);
    }
    const agentConfig = join(dir, 'agent.yaml');
    writeFileSync(agentConfig, example.replaceAll(hooks, join(installed, 'hooks/')).replaceAll('/srv/', join(dir, 'srv/')));
    const check = await runProcess(bin, ['agent', '--check', '-c', agentConfig]);
    expect(check.code, show(check)).toBe(0);
    expect(check.stdout).toContain('valid (agent web-1, 2 app(s))');

    const httpPort = await freePort();
    const hubConfig = join(dir, 'hub.yaml');
    writeFileSync(hubConfig, stringify({ http: { host: '127.0.0.1', port: httpPort }, broker: { port: await freePort() }, stateDir: join(dir, 'hub-state') }));
    const hub = startService(cleanup, bin, ['hub', '-c', hubConfig], { ...process.env, PUSHFLEET_WEBHOOK_SECRET: 'test-secret', PUSHFLEET_LOG_JSON: '1' });
    const ready = await waitFor(
      () => `the installed hub to answer /readyz on ${httpPort}:\n${hub.output()}`,
      () => fetch(`http://127.0.0.1:${httpPort}/readyz`).then((r) => r.ok && r, () => undefined),
    );
    expect(ready.status).toBe(200);
    // The dashboard from the installed files: the page and the module it loads first.
    for (const path of ['/', '/assets/main.js']) expect((await fetch(`http://127.0.0.1:${httpPort}${path}`)).status, path).toBe(200);
    hub.child.kill('SIGTERM');
    expect(await hub.exited, hub.output()).toBe(0);
  }, 240_000);
});

/**
 * A temp npm cache sharing the real one's packages, whose prebuild cache holds the
 * better-sqlite3 binary `npm ci` built here, under the name prebuild-install looks for. Where
 * GitHub is reachable its release download lands there the same way; where it is not (here, CI),
 * better-sqlite3 would compile itself again, a minute and a half of the suite for what `npm ci`
 * already showed works.
 */
async function npmCacheWithPrebuild(dir: string): Promise<string> {
  const real = (await runProcess('npm', ['config', 'get', 'cache'])).stdout.trim();
  const cache = join(dir, 'npm-cache');
  mkdirSync(join(cache, '_prebuilds'), { recursive: true });
  symlinkSync(join(real, '_cacache'), join(cache, '_cacache'));
  const require = createRequire(join(ROOT, 'node_modules', 'better-sqlite3', 'package.json'));
  const util = require('prebuild-install/util') as { getDownloadUrl(o: object): string; cachedPrebuild(url: string): string };
  const sqlite = require('./package.json') as { name: string; version: string; repository: unknown };
  const url = util.getDownloadUrl({ pkg: sqlite, platform: process.platform, arch: process.arch, libc: '', runtime: 'node', abi: process.versions.modules, 'tag-prefix': 'v' });
  const saved = process.env.npm_config_cache;
  process.env.npm_config_cache = cache;
  const file = util.cachedPrebuild(url);
  if (saved === undefined) delete process.env.npm_config_cache;
  else process.env.npm_config_cache = saved;
  const made = await runProcess('tar', ['czf', file, '-C', join(ROOT, 'node_modules', 'better-sqlite3'), 'build/Release/better_sqlite3.node']);
  expect(made.code, show(made)).toBe(0);
  return cache;
}
