import { randomBytes } from 'node:crypto';
import { renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { harnessUrl } from '../support/broker-users.js';
import { Cleanup } from '../support/cleanup.js';
import { CliProcess } from '../support/cli-process.js';
import { freePort } from '../support/ports.js';
import { githubPushPayload, postWebhook, signedRequest } from '../support/push-payload.js';
import { SECRET, watch } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

const sha = () => randomBytes(20).toString('hex');

function removeDir(dir: string) {
  renameSync(dir, `${dir}.removed`);
  rmSync(`${dir}.removed`, { recursive: true, force: true });
}

describe('the state directory removed under a running hub', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function startHubProcess() {
    const stateDir = cleanup.tempDir('pushfleet-hub-');
    const http = await freePort();
    const mqtt = await freePort();
    const mqttUrl = await harnessUrl(stateDir, `mqtt://127.0.0.1:${mqtt}`);
    const hub = new CliProcess(['hub', '--host', '127.0.0.1', '--port', String(http), '--broker-port', String(mqtt), '--state-dir', stateDir], { PUSHFLEET_WEBHOOK_SECRET: SECRET });
    cleanup.defer(() => hub.stop('SIGKILL'));
    await hub.waitForLog('webhook listening', (l) => l.msg === 'webhook listening');
    const base = `http://127.0.0.1:${http}`;
    const readyz = async () => {
      const res = await fetch(`${base}/readyz`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const push = () => postWebhook(`${base}/webhook`, signedRequest(SECRET, 'push', githubPushPayload({ after: sha() })));
    return { hub, stateDir, readyz, push, pushes: await watch(cleanup, mqttUrl, 'github/#') };
  }

  it.each([
    // Moved away in one step, then deleted: the hub cannot catch it half removed (which it would
    // report as the database removed, just as true but less to the point).
    { removed: 'the directory', remove: (dir: string) => removeDir(dir), problem: (dir: string) => `state directory ${dir} is gone; restart the hub with its state dir` },
    { removed: 'the database file', remove: (dir: string) => rmSync(join(dir, 'hub.sqlite')), problem: (dir: string) => `state database ${join(dir, 'hub.sqlite')} was removed; restart the hub with its state dir` },
  ])('$removed: noticed within seconds, logged, /readyz 503 and a signed push 503 and not published', async ({ remove, problem }) => {
    const { hub, stateDir, readyz, push, pushes } = await startHubProcess();
    expect((await readyz()).status).toBe(200);
    // The subscriber sees what the hub publishes: a push before the removal reaches it.
    expect((await push()).status).toBe(200);
    await waitFor('the first push on github/#', () => pushes.messages.length === 1);

    remove(stateDir);
    const expected = problem(stateDir);
    const notReady = await waitFor('/readyz 503', async () => ((await readyz()).status === 503 ? readyz() : undefined), 5000);
    expect(notReady.body).toEqual({ ok: false, broker: 'connected', error: expected });
    // The log line travels through the hub's stdout pipe, which may come after the HTTP answer.
    const logged = await hub.waitForLog('the state directory loss logged', (l) => l.msg === 'state directory lost: no more pushes are taken', 5000);
    expect(logged).toMatchObject({ level: 50, problem: expected });

    const refused = await push();
    expect(refused).toEqual({ status: 503, body: { error: expected } });
    // A push the hub had published would have reached the subscriber before the 503 went out;
    // allow it the time a slow broker round trip takes all the same.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(pushes.messages).toHaveLength(1);
  });
});
