import { accessSync, constants, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
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
    // modules build, and pushfleet's own `prepare` (tsc) must not run: TypeScript is not installed.
    // better-sqlite3 takes a prebuilt binary from its GitHub releases (cached by npm ci in
    // ~/.npm/_prebuilds) or, unreachable, compiles itself: about a minute on two cores.
    const install = await runProcess('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts', tarball], { cwd: dir });
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
    hub.child.kill('SIGTERM');
    expect(await hub.exited, hub.output()).toBe(0);
  }, 240_000);
});
