import { join } from 'node:path';
import { sign } from '../../src/shared/signing/envelope.js';
import { generateKeyFiles, loadSigningKey, PRIVATE_KEY_FILE, type SigningKey } from '../../src/shared/signing/keys.js';

/** The hub.pub of each test hub by its broker's host:port, so an agent on that broker (with any credentials) trusts that hub. */
const hubKeys = new Map<string, string>();
const brokerOf = (mqttUrl: string): string => new URL(mqttUrl).host;

export function registerHubKey(mqttUrl: string, pubFile: string): void {
  hubKeys.set(brokerOf(mqttUrl), pubFile);
}

/** The hub.pub of the test hub serving `mqttUrl`, if a test hub was started on it. */
export function hubKeyFor(mqttUrl: string): string | undefined {
  return hubKeys.get(brokerOf(mqttUrl));
}

/** A key pair in `dir` (hub.key, hub.pub), as `pushfleet keys init --dir` writes it. */
export function makeHubKeys(dir: string): { keyFile: string; pubFile: string; key: SigningKey } {
  const made = generateKeyFiles(join(dir, PRIVATE_KEY_FILE));
  return { ...made, key: loadSigningKey(made.keyFile) };
}

/**
 * Signs as a hub would, for tests that publish heads, pins or commands without one (or that
 * forge an old or future one): the time and sequence default to now and a fresh µs count.
 */
export function testSigner(keyFile: string) {
  const key = loadSigningKey(keyFile);
  let last = 0;
  return {
    key,
    seal(topic: string, payload: string, at: { ts?: number; seq?: number } = {}): Buffer {
      const ts = at.ts ?? Date.now();
      last = Math.max(last + 1, Date.now() * 1000);
      return sign(key, topic, payload, ts, at.seq ?? last);
    },
  };
}
