import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, redactUrlPassword } from '../../src/shared/logger.js';

/** A logger writing its JSON lines into an array. */
function captured() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _enc, done) => void (lines.push(JSON.parse(chunk.toString())), done()) });
  return { log: createLogger('test', 'info', sink), lines };
}

describe('logs never carry a secret', () => {
  it('redacts the password of a URL, and only that', () => {
    expect(redactUrlPassword('mqtt://node-1:s3cr3t@hub.example:1883')).toBe('mqtt://node-1:***@hub.example:1883');
    expect(redactUrlPassword('fetch https://x-access-token:ghp_abc@github.com/acme/web.git failed')).toBe('fetch https://x-access-token:***@github.com/acme/web.git failed');
    expect(redactUrlPassword('mqtt://hub.example:1883 and https://github.com/acme/web.git')).toBe('mqtt://hub.example:1883 and https://github.com/acme/web.git');
  });

  it('in fields, nested fields and messages (an app output line), and censors fields named password, secret, token', () => {
    const { log, lines } = captured();
    log.info({ url: 'mqtt://node-1:s3cr3t@127.0.0.1:1883', agent: 'node-1' }, 'connecting to MQTT broker');
    log.info({ step: 'update', stream: 'stdout' }, 'remote: https://bot:ghp_abc@github.com/acme/web.git');
    log.warn({ mqtt: { url: 'mqtts://op:hunter2@hub:8883', password: 'hunter2' }, secret: 'whsec', token: 'ghp_abc' }, 'config');
    const text = JSON.stringify(lines);
    for (const secret of ['s3cr3t', 'ghp_abc', 'hunter2', 'whsec']) expect(text).not.toContain(secret);
    expect(lines[0]).toMatchObject({ url: 'mqtt://node-1:***@127.0.0.1:1883', agent: 'node-1', msg: 'connecting to MQTT broker' });
    expect(lines[1]).toMatchObject({ msg: 'remote: https://bot:***@github.com/acme/web.git' });
    expect(lines[2]).toMatchObject({ mqtt: { url: 'mqtts://op:***@hub:8883', password: '[redacted]' }, secret: '[redacted]', token: '[redacted]' });
  });
});
