import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { runCli } from '../support/cli-process.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('pushfleet hub --check', () => {
  it('validates the config and the files it names without starting anything', async () => {
    const dir = cleanup.tempDir('pushfleet-hub-check-');
    const stateDir = join(dir, 'state');
    const good = join(dir, 'good.yaml');
    writeFileSync(good, `stateDir: ${stateDir}\nhttp: {port: 3999}\n`);
    const ok = await runCli(['hub', '--check', '-c', good]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('valid (webhook on 0.0.0.0:3999/webhook, embedded broker on 127.0.0.1:1883)');
    // Nothing made: no state dir, no key, no account.
    expect(existsSync(stateDir)).toBe(false);

    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, `stateDir: ${stateDir}\nhttp: {port: "x"}\nbogus: 1\n`);
    const invalid = await runCli(['hub', '--check', '-c', bad]);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toMatch(/^  http\.port: .*\n  bogus: unknown key$/m);

    const noKey = join(dir, 'no-key.yaml');
    writeFileSync(noKey, `stateDir: ${stateDir}\nsigning: {key: ${join(dir, 'missing.key')}}\nbroker: {tls: {cert: ${join(dir, 'c.pem')}, key: ${join(dir, 'k.pem')}}}\n`);
    const missing = await runCli(['hub', '--check', '-c', noKey]);
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim()).toMatch(/^pushfleet: signing\.key: cannot use .*missing\.key/);
    expect(existsSync(stateDir)).toBe(false);
  });
});
