import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { runCli } from '../support/cli-process.js';
import { startMosquitto } from '../support/mosquitto.js';
import { freePort } from '../support/ports.js';

describe('pushfleet play', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  const file = (name: string, text: string) => {
    const dir = cleanup.tempDir('pushfleet-play-cli-');
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };

  it('refuses an invalid playbook with every problem listed, before connecting (exit 2)', async () => {
    const seed = await runCli(['play', file('bad.txt', 'SEND node1\nECHO hi\nWAIT 1\n'), '--mqtt-url', 'mqtt://127.0.0.1:1']);
    expect(seed.code).toBe(2);
    expect(seed.stderr).toMatch(/line 1: SEND needs a command[\s\S]*line 2: unknown instruction "ECHO"/);
    const native = await runCli(['play', file('bad.yaml', 'steps:\n  - {id: a, action: X}\n'), '--mqtt-url', 'mqtt://127.0.0.1:1']);
    expect(native.code).toBe(2);
    expect(native.stderr).toContain('steps.0.targets');
    expect((await runCli(['play', '/nonexistent/playbook'])).code).toBe(2);
    expect((await runCli(['play', file('ok.txt', 'WAIT 1\n'), '--root', 'a/#'])).code).toBe(2);
    // A RECEIVE file that would leave --out-dir is refused before anything listens or is written.
    const escape = await runCli(['play', file('escape.txt', 'RECEIVE 6000 ../escape.txt\n'), '--out-dir', cleanup.tempDir('pushfleet-out-'), '--mqtt-url', 'mqtt://127.0.0.1:1']);
    expect(escape.code).toBe(2);
    expect(escape.stderr).toContain('line 1: RECEIVE needs a plain file name');
  });

  it('fails with one line when the broker or the hub does not answer (exit 1)', async () => {
    const down = await runCli(['play', file('p.txt', 'WAIT 0\n'), '--mqtt-url', `mqtt://127.0.0.1:${await freePort()}`, '--connect-timeout', '2']);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/^pushfleet: cannot reach the broker/);
    // A broker without a hub: nobody accepts the native run.
    const broker = await startMosquitto();
    cleanup.defer(() => broker.stop());
    const nohub = await runCli(['play', file('p.yaml', 'steps:\n  - {id: a, targets: n, action: X}\n'), '--mqtt-url', broker.url, '--hub-timeout', '1']);
    expect(nohub.code).toBe(1);
    expect(nohub.stderr).toContain('no hub answered within 1 s');
  });
});
