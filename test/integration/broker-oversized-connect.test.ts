import { connect } from 'node:net';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { BEFORE_LOGIN_BYTES } from '../../src/hub/broker/connect-bound.js';
import { HUB_STATUS } from '../../src/shared/topics.js';
import { Cleanup } from '../support/cleanup.js';
import { startTestHub } from '../support/test-hub.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** Sends a CONNECT that declares `declared` bytes, then junk, as fast as the hub takes it; resolves with the bytes written when the hub closed the connection. */
function oversizedConnect(port: number, declared: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let written = 0;
    const chunk = Buffer.alloc(16 * 1024, 0x61);
    const remaining: number[] = [];
    for (let n = declared; ; n = Math.floor(n / 128)) {
      remaining.push(n > 127 ? (n % 128) | 0x80 : n);
      if (n <= 127) break;
    }
    socket.on('connect', () => {
      socket.write(Buffer.from([0x10, ...remaining]));
      const pump = () => {
        while (written < declared && socket.writable) {
          written += chunk.length;
          if (!socket.write(chunk)) return void socket.once('drain', pump);
        }
      };
      pump();
    });
    socket.on('close', () => resolve(written));
    socket.on('error', () => undefined);
    setTimeout(() => reject(new Error(`not closed after ${written} bytes`)), 20_000).unref();
  });
}

describe('the embedded broker before a client has logged in', () => {
  it('closes a connection whose CONNECT would not fit in 64 KiB instead of buffering it, and serves the others', async () => {
    const hub = await startTestHub(cleanup, 'aedes');
    const port = Number(new URL(hub.mqttUrl).port);
    // 200 MB declared: without the bound the hub reads and holds it all, and keeps the connection
    // until aedes' 30 s connect timeout. What was written counts the loopback socket buffers too (MBs).
    const written = await oversizedConnect(port, 200 * 1024 * 1024);
    expect(written).toBeLessThan(512 * BEFORE_LOGIN_BYTES);
    const client = await mqtt.connectAsync(hub.mqttUrl, { reconnectPeriod: 0 });
    cleanup.defer(() => client.endAsync(true));
    const status = new Promise<string>((resolve) => client.on('message', (_t, p) => resolve(p.toString())));
    await client.subscribeAsync(HUB_STATUS, { qos: 1 });
    expect(JSON.parse(await status)).toMatchObject({ state: 'online' });
  });
});
