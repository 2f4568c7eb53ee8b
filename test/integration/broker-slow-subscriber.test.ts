/**
 * The embedded broker acknowledges the hub's own QoS 1 publishes (a push, a head) once they are
 * stored, as it acknowledges a client's: not once they are written to every subscriber's socket.
 * One agent that stops reading (a hung host, a full TCP window) must not hold the answer to every
 * webhook until aedes' drain timeout drops it; and what was acknowledged early still reaches it,
 * in order, once it reads again.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmbeddedBroker } from '../../src/hub/broker/embedded-broker.js';
import { createLogger } from '../../src/shared/logger.js';
import { Cleanup } from '../support/cleanup.js';
import { waitFor } from '../support/wait.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const MESSAGES = 48;
/** 48 × 512 KiB: far more than a paused loopback socket's kernel buffers take. */
const SIZE = 512 * 1024;

describe('embedded broker with a subscriber that reads nothing', () => {
  it("acknowledges every stored publish while that subscriber's socket is full, and delivers them all to it later", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'pushfleet-slow-sub-'));
    cleanup.defer(() => rmSync(stateDir, { recursive: true, force: true }));
    const broker = await startEmbeddedBroker({ host: '127.0.0.1', port: 0, state: { stateDir } }, createLogger('broker', 'warn'));
    cleanup.defer(() => broker.close());

    const slow = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0, clientId: 'hung-agent' });
    cleanup.defer(() => slow.endAsync(true));
    const slowGot: string[] = [];
    slow.on('message', (_topic, payload) => slowGot.push(payload.subarray(0, 7).toString()));
    await slow.subscribeAsync('pushfleet/heads/acme/web/+', { qos: 1 });
    const quick = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
    cleanup.defer(() => quick.endAsync(true));
    const quickGot: string[] = [];
    quick.on('message', (_topic, payload) => quickGot.push(payload.subarray(0, 7).toString()));
    await quick.subscribeAsync('pushfleet/heads/acme/web/+', { qos: 1 });

    // The hung agent reads nothing more: its socket fills, and aedes waits for it to drain.
    (slow.stream as unknown as { pause(): void }).pause();
    let dropped = false;
    slow.on('close', () => (dropped = true));
    const payload = (n: number) => Buffer.concat([Buffer.from(`m${String(n).padStart(6, '0')} `), Buffer.alloc(SIZE - 8, 120)]);
    for (let n = 0; n < MESSAGES; n++) await broker.publish('pushfleet/heads/acme/web/main', payload(n), { qos: 1, retain: true });
    // All acknowledged while aedes still waits on the hung socket (its drain timeout is 30 s).
    expect(dropped).toBe(false);
    expect(slowGot.length).toBeLessThan(MESSAGES);
    await waitFor(() => `the quick subscriber has all ${MESSAGES}, got ${quickGot.length}`, () => quickGot.length === MESSAGES, 10_000);

    (slow.stream as unknown as { resume(): void }).resume();
    const expected = Array.from({ length: MESSAGES }, (_, n) => `m${String(n).padStart(6, '0')}`);
    await waitFor(() => `the hung agent has all ${MESSAGES} once it reads, got ${slowGot.length}`, () => slowGot.length === MESSAGES, 10_000);
    expect(slowGot).toEqual(expected);
    expect(quickGot).toEqual(expected);
  }, 25_000);
});
