import { describe, expect, it } from 'vitest';
import { parseSemaphoreTopic } from '../../src/hub/engines/semaphore/topic.js';
import { check } from '../../src/shared/messages.js';
import { decodeSemConcurrency, decodeSemUid, SemRegister } from '../../src/shared/contract/semaphore-messages.js';

describe('semaphore topics', () => {
  const parse = (t: string) => parseSemaphoreTopic('coordinosaur', t);

  it('reads channel and action with and without the leading slash', () => {
    expect(parse('coordinosaur/jobs/register')).toEqual({ kind: 'action', route: 'coordinosaur', channel: 'jobs', action: 'register' });
    expect(parse('/coordinosaur/jobs/concurrency/set')).toEqual({ kind: 'action', route: '/coordinosaur', channel: 'jobs', action: 'concurrency/set' });
  });

  it('ignores the events the engine publishes itself', () => {
    for (const t of ['/coordinosaur/j/queued/u', 'coordinosaur/j/error', 'coordinosaur/error', 'coordinosaur/j/infos/reply']) {
      expect(parse(t)).toEqual({ kind: 'own' });
    }
  });

  it('tells its retained topics apart, so a kept copy can be checked against the state', () => {
    expect(parse('coordinosaur/j/go/u')).toEqual({ kind: 'retained', route: 'coordinosaur', channel: 'j', output: 'go', uid: 'u' });
    expect(parse('/coordinosaur/j/expired/u')).toEqual({ kind: 'retained', route: '/coordinosaur', channel: 'j', output: 'expired', uid: 'u' });
  });

  it('names what is wrong with a malformed topic', () => {
    expect(parse('coordinosaur/j/launch')).toMatchObject({ kind: 'bad', code: 'unknown-action', channel: 'j', error: expect.stringContaining('"launch"') });
    expect(parse('coordinosaur/j')).toMatchObject({ kind: 'bad', code: 'bad-topic', channel: 'j' });
    expect(parse('coordinosaur//register')).not.toHaveProperty('channel');
    expect(parse('coordinosaur//register')).toMatchObject({ kind: 'bad', code: 'bad-topic' });
    expect(parse('/coordinosaur')).toMatchObject({ kind: 'bad', route: '/coordinosaur', code: 'bad-topic' });
    expect(parse('coordinosaur/j/go')).toMatchObject({ kind: 'bad', code: 'unknown-action' });
  });

  it('works with a multi-level prefix', () => {
    expect(parseSemaphoreTopic('acme/sem', '/acme/sem/c/finished')).toEqual({ kind: 'action', route: '/acme/sem', channel: 'c', action: 'finished' });
  });
});

describe('semaphore payloads', () => {
  it('accepts registers as the seed did: string or integer uid, integer or digit-string timeout, extra keys', () => {
    expect(check(SemRegister, { uid: 'job-1', timeout: 30, client: 'x' })).toMatchObject({ ok: true, value: { uid: 'job-1', timeout: 30 } });
    expect(check(SemRegister, { uid: 42, timeout: '30' })).toMatchObject({ ok: true, value: { uid: '42', timeout: 30 } });
    expect(check(SemRegister, { uid: 'a', timeout: 1, queueTimeout: 5 })).toMatchObject({ ok: true, value: { queueTimeout: 5 } });
  });

  it('names the key of a bad register', () => {
    expect(check(SemRegister, { timeout: 3 })).toMatchObject({ ok: false, error: expect.stringMatching(/^uid: /) });
    expect(check(SemRegister, { uid: true, timeout: 3 })).toMatchObject({ ok: false, error: 'uid: expected a string (or integer) uid' });
    expect(check(SemRegister, { uid: 'a/b', timeout: 3 })).toMatchObject({ ok: false, error: expect.stringContaining('may not contain "/"') });
    expect(check(SemRegister, { uid: 'a', timeout: -1 })).toMatchObject({ ok: false, error: expect.stringMatching(/^timeout: /) });
    expect(check(SemRegister, { uid: 'a', timeout: 'soon' })).toMatchObject({ ok: false, error: expect.stringMatching(/^timeout: /) });
    expect(check(SemRegister, [])).toMatchObject({ ok: false });
  });

  it('takes a raw or JSON-quoted uid for finished and aborted', () => {
    expect(decodeSemUid(Buffer.from('job-1'))).toEqual({ ok: true, value: 'job-1' });
    expect(decodeSemUid(Buffer.from('"job-1"'))).toEqual({ ok: true, value: 'job-1' });
    expect(decodeSemUid(Buffer.from(''))).toMatchObject({ ok: false });
    expect(decodeSemUid(Buffer.from('a#b'))).toMatchObject({ ok: false });
  });

  it('takes a whole number (or empty, to reset) for concurrency/set', () => {
    expect(decodeSemConcurrency('5')).toEqual({ ok: true, value: 5 });
    expect(decodeSemConcurrency(' 0\n')).toEqual({ ok: true, value: 0 });
    expect(decodeSemConcurrency('')).toEqual({ ok: true, value: null });
    for (const bad of ['-1', '2.5', 'many', '{"max":3}']) expect(decodeSemConcurrency(bad)).toMatchObject({ ok: false });
  });
});
