import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { SeenSequenceFile } from '../../agent/seen-sequences.js';
import { persistedSequence } from '../../src/hub/signing-sequence.js';
import { open, sign } from '../../src/shared/signing/envelope.js';
import { generateKeyFiles, KeyExistsError, keyId, loadSigningKey, loadVerifyKey, type SigningKey } from '../../src/shared/signing/keys.js';
import { SequenceCounter } from '../../src/shared/signing/sequence.js';
import { signedTopic } from '../../src/shared/signing/signed-topics.js';
import { Verifier, type SeenEntry, type SeenStore } from '../../src/shared/signing/verifier.js';
import { TopicContract } from '../../src/shared/contract/topic-table.js';
import { ManualClock } from '../support/manual-clock.js';

const HEAD = 'pushfleet/heads/acme/web/refs%2Fheads%2Fmain';
const OTHER_HEAD = 'pushfleet/heads/acme/web/refs%2Fheads%2Fother';
const ROLLBACK = 'pushfleet/agents/web-1/rollback';
const PIN = 'pushfleet/agents/web-1/pins/web';
const T0 = Date.parse('2026-12-01T10:00:00Z');

const newKey = (): SigningKey => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey, kid: keyId(publicKey) };
};
const memorySeen = (): SeenStore & { map: Map<string, SeenEntry> } => {
  const map = new Map<string, SeenEntry>();
  return { map, get: (t) => map.get(t), put: (t, e) => void map.set(t, e) };
};

describe('signed envelope', () => {
  const key = newKey();

  it('opens what it signed, and names the inner payload, topic, ts and seq', () => {
    const bytes = sign(key, HEAD, '{"after":"abc"}', T0, 7);
    const e = JSON.parse(bytes.toString());
    expect(e).toMatchObject({ pushfleet: 'signed/v1', kid: key.kid, topic: HEAD, ts: T0, seq: 7, payload: '{"after":"abc"}' });
    expect(e.kid).toMatch(/^[0-9a-f]{16}$/);
    const opened = open([key], bytes);
    expect(opened.ok && opened.payload.toString()).toBe('{"after":"abc"}');
  });

  it('says why it will not open a message: unsigned, unknown key, bad signature', () => {
    expect(open([key], Buffer.from('{"after":"abc"}'))).toMatchObject({ ok: false, reason: 'unsigned' });
    expect(open([key], Buffer.from('START 5201'))).toMatchObject({ ok: false, reason: 'unsigned' });
    expect(open([key], sign(newKey(), HEAD, 'x', T0, 1))).toMatchObject({ ok: false, reason: 'unknown-key' });
    const e = JSON.parse(sign(key, HEAD, '{"after":"abc"}', T0, 1).toString());
    for (const change of [{ payload: '{"after":"bad"}' }, { ts: T0 + 1 }, { seq: 2 }, { topic: OTHER_HEAD }]) {
      expect(open([key], Buffer.from(JSON.stringify({ ...e, ...change }))), JSON.stringify(change)).toMatchObject({ ok: false, reason: 'bad-signature' });
    }
  });
});

describe('Verifier', () => {
  const key = newKey();
  const setup = (maxAgeMs?: number) => {
    const clock = new ManualClock(T0);
    const seen = memorySeen();
    return { clock, seen, verifier: new Verifier({ contract: new TopicContract(), keys: [key], seen, now: clock.now, maxAgeMs }) };
  };

  it('accepts a signed head and passes topics that need no signature as they are', () => {
    const { verifier } = setup();
    expect(verifier.check(HEAD, sign(key, HEAD, 'a', T0, 1))).toEqual({ ok: true, payload: Buffer.from('a'), duplicate: false });
    expect(verifier.check('pushfleet/agents/web-1/retry', Buffer.from('plain'))).toEqual({ ok: true, payload: Buffer.from('plain'), duplicate: false });
  });

  it('refuses each kind of forgery with its reason', () => {
    const { verifier } = setup();
    expect(verifier.check(HEAD, Buffer.from('{"after":"abc"}'))).toMatchObject({ ok: false, reason: 'unsigned' });
    expect(verifier.check(HEAD, sign(newKey(), HEAD, 'a', T0, 1))).toMatchObject({ ok: false, reason: 'unknown-key' });
    const bad = { ...JSON.parse(sign(key, HEAD, 'a', T0, 1).toString()), payload: 'b' };
    expect(verifier.check(HEAD, Buffer.from(JSON.stringify(bad)))).toMatchObject({ ok: false, reason: 'bad-signature' });
    expect(verifier.check(HEAD, sign(key, OTHER_HEAD, 'a', T0, 1))).toMatchObject({ ok: false, reason: 'wrong-topic' });
    expect(verifier.check(HEAD, sign(key, HEAD, 'a', T0 + 5 * 60_000 + 1, 1))).toMatchObject({ ok: false, reason: 'future' });
  });

  it('takes a head up to the clock tolerance ahead, and retained state of any age', () => {
    const { verifier } = setup();
    expect(verifier.check(HEAD, sign(key, HEAD, 'a', T0 + 5 * 60_000, 1)).ok).toBe(true);
    expect(verifier.check(OTHER_HEAD, sign(key, OTHER_HEAD, 'a', T0 - 86_400_000 * 365, 1)).ok).toBe(true);
  });

  it('refuses a command older than the max age, and takes one just within it', () => {
    const { verifier } = setup();
    expect(verifier.check(ROLLBACK, sign(key, ROLLBACK, 'r', T0 - 300_001, 1))).toMatchObject({ ok: false, reason: 'too-old' });
    expect(verifier.check(ROLLBACK, sign(key, ROLLBACK, 'r', T0 - 300_000, 2)).ok).toBe(true);
    const strict = setup(1000).verifier;
    expect(strict.check(ROLLBACK, sign(key, ROLLBACK, 'r', T0 - 1001, 1))).toMatchObject({ ok: false, reason: 'too-old' });
  });

  it('refuses a replay of an older or different message with the same seq, and takes the same one again as a duplicate', () => {
    const { verifier, clock } = setup();
    const first = sign(key, HEAD, 'first', T0, 100);
    const second = sign(key, HEAD, 'second', T0 + 1, 200);
    expect(verifier.check(HEAD, first)).toMatchObject({ ok: true, duplicate: false });
    expect(verifier.check(HEAD, second)).toMatchObject({ ok: true, duplicate: false });
    clock.advance(86_400_000);
    expect(verifier.check(HEAD, second)).toEqual({ ok: true, payload: Buffer.from('second'), duplicate: true });
    expect(verifier.check(HEAD, first)).toMatchObject({ ok: false, reason: 'replayed' });
    expect(verifier.check(HEAD, sign(key, HEAD, 'forked', T0 + 2, 200))).toMatchObject({ ok: false, reason: 'replayed' });
    // Sequences are per topic: another ref's lower seq is its own.
    expect(verifier.check(OTHER_HEAD, sign(key, OTHER_HEAD, 'x', T0, 5)).ok).toBe(true);
  });

  it('takes an empty payload unsigned where it only clears (a head, a go), never on a pin or a command', () => {
    const { verifier } = setup();
    expect(verifier.check(HEAD, Buffer.alloc(0)).ok).toBe(true);
    expect(verifier.check('coordinosaur/pushfleet-rollout.web.prod.0123456789ab/go/web-1', Buffer.alloc(0)).ok).toBe(true);
    expect(verifier.check(PIN, Buffer.alloc(0))).toMatchObject({ ok: false, reason: 'unsigned' });
    expect(verifier.check(ROLLBACK, Buffer.alloc(0))).toMatchObject({ ok: false, reason: 'unsigned' });
    const unpin = verifier.check(PIN, sign(key, PIN, '', T0, 1));
    expect(unpin.ok && unpin.payload.length).toBe(0);
  });
});

describe('signed topics', () => {
  it('covers heads, pins, rollbacks, rollout go grants and node commands, and nothing an agent reports', () => {
    const contract = new TopicContract();
    for (const t of [HEAD, PIN, ROLLBACK, 'pushfleet/orchestrator/nodes/web-1/command', 'coordinosaur/pushfleet-rollout.web.prod.0123456789ab/go/web-1', '/coordinosaur/pushfleet-rollout.web.prod.0123456789ab/go/web-1']) {
      expect(signedTopic(contract, t), t).not.toBeNull();
    }
    for (const t of ['github/acme/web', 'pushfleet/agents/web-1/apps/web', 'pushfleet/agents/web-1/retry', 'coordinosaur/builds/go/x', 'coordinosaur/pushfleet-rollout.a.b.c/expired/x', 'testlab/node1/COMMAND']) {
      expect(signedTopic(contract, t), t).toBeNull();
    }
    expect(signedTopic(new TopicContract({ semaphorePrefix: 'lab' }), 'lab/pushfleet-rollout.a.b.c/go/x')).toEqual({ kind: 'state', emptyClears: true });
    expect([signedTopic(contract, PIN), signedTopic(contract, ROLLBACK)]).toEqual([{ kind: 'state', emptyClears: false }, { kind: 'command', emptyClears: false }]);
  });
});

describe('SequenceCounter', () => {
  it('is strictly increasing, from the clock in µs, even when the clock stands still or goes back', () => {
    const seq = new SequenceCounter();
    const a = seq.next(T0);
    expect(a).toBe(T0 * 1000);
    expect(seq.next(T0)).toBe(a + 1);
    expect(seq.next(T0 - 10_000)).toBe(a + 2);
    expect(seq.next(T0 + 1)).toBe((T0 + 1) * 1000);
  });
});

describe('the hub\'s persisted sequence', () => {
  it('starts above everything signed before a restart, even with the clock set back an hour', () => {
    const db = new Database(':memory:');
    const first = persistedSequence(db);
    const signed = [first(T0), first(T0), first(T0 + 1000)];
    const restarted = persistedSequence(db);
    expect(restarted(T0 - 3_600_000)).toBeGreaterThan(Math.max(...signed));
  });
});

describe('key files and the seen-sequence file', () => {
  const dirs: string[] = [];
  const tempDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'pushfleet-signing-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('writes hub.key 0600 and hub.pub, loads both with one key id, and will not overwrite without force', () => {
    const dir = tempDir();
    const made = generateKeyFiles(join(dir, 'hub.key'));
    expect(made.pubFile).toBe(join(dir, 'hub.pub'));
    expect(statSync(made.keyFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(made.keyFile, 'utf8')).toContain('BEGIN PRIVATE KEY');
    expect(readFileSync(made.pubFile, 'utf8')).toContain('BEGIN PUBLIC KEY');
    const signing = loadSigningKey(made.keyFile);
    expect(loadVerifyKey(made.pubFile).kid).toBe(signing.kid);
    expect(signing.kid).toBe(made.kid);
    expect(() => generateKeyFiles(join(dir, 'hub.key'))).toThrow(KeyExistsError);
    expect(generateKeyFiles(join(dir, 'hub.key'), { force: true }).kid).not.toBe(made.kid);
    writeFileSync(join(dir, 'rsa.pub'), generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'pem', type: 'spki' }));
    expect(() => loadVerifyKey(join(dir, 'rsa.pub'))).toThrow(/expected Ed25519/);
  });

  it('keeps the last accepted seq per topic across a reload, bounded, forgetting the least recent first', () => {
    const dir = tempDir();
    const file = new SeenSequenceFile(dir, 3);
    for (const [i, t] of ['a', 'b', 'c'].entries()) file.put(t, { seq: i + 1, sig: `s${i}` });
    file.put('a', { seq: 10, sig: 'sa' });
    file.put('d', { seq: 4, sig: 'sd' });
    const again = new SeenSequenceFile(dir, 3);
    again.load();
    expect(['a', 'b', 'c', 'd'].map((t) => again.get(t)?.seq)).toEqual([10, undefined, 3, 4]);
  });

  it('records nothing it could not write: a failed write leaves the last accepted seq as it was', () => {
    const dir = tempDir();
    const file = new SeenSequenceFile(join(dir, 'state'));
    file.put('a', { seq: 1, sig: 's1' });
    // The state dir replaced by a file: every write fails, as on a full disk.
    rmSync(join(dir, 'state'), { recursive: true });
    writeFileSync(join(dir, 'state'), '');
    expect(() => file.put('a', { seq: 2, sig: 's2' })).toThrow();
    expect(() => file.put('b', { seq: 3, sig: 's3' })).toThrow();
    expect([file.get('a'), file.get('b')]).toEqual([{ seq: 1, sig: 's1' }, undefined]);
  });

  it("keeps a replay-safe topic's seq in memory only: the services lease writes nothing to disk", () => {
    const dir = tempDir();
    const contract = new TopicContract();
    const lease = 'pushfleet/agents/web-1/services/lease';
    const file = new SeenSequenceFile(dir, undefined, (t) => contract.lookup(t)?.spec.replaySafe === true);
    file.put(lease, { seq: 7, sig: 's7' });
    expect(file.get(lease)).toEqual({ seq: 7, sig: 's7' });
    expect(existsSync(join(dir, 'signed-seen.json'))).toBe(false);
    file.put(ROLLBACK, { seq: 8, sig: 's8' });
    const again = new SeenSequenceFile(dir, undefined, (t) => contract.lookup(t)?.spec.replaySafe === true);
    again.load();
    expect([again.get(lease), again.get(ROLLBACK)?.seq]).toEqual([undefined, 8]);
  });

  it('refuses to start from a damaged file rather than forget what it accepted', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'signed-seen.json'), '{"v":1,"topics":[[');
    expect(() => new SeenSequenceFile(dir).load()).toThrow(/signed-seen\.json is damaged/);
  });
});
