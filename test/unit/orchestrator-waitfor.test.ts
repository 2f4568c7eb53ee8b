import { describe, expect, it } from 'vitest';
import { StatusBook } from '../../src/hub/engines/orchestrator/waitfor.js';

describe('WAITFOR rules', () => {
  it('matches exactly: STARTED_X is not STARTED, STOPPED is not STOP', () => {
    const book = new StatusBook();
    book.record('n', 'STARTED_X', false);
    book.record('n', 'STOPPED', false);
    expect(book.check('n', 'STARTED')).toEqual({ state: 'waiting' });
    expect(book.check('n', 'STOP')).toEqual({ state: 'waiting' });
    book.record('n', ' STARTED\n', false);
    expect(book.check('n', 'STARTED')).toEqual({ state: 'met' });
  });

  it('ignores a status retained by an earlier run', () => {
    const book = new StatusBook();
    book.record('n', 'STOPPED', true);
    expect(book.check('n', 'STOPPED')).toEqual({ state: 'waiting' });
    book.record('n', 'STOPPED', false);
    expect(book.check('n', 'STOPPED')).toEqual({ state: 'met' });
  });

  it('lets each status satisfy one WAITFOR, in order', () => {
    const book = new StatusBook();
    book.record('n', 'STARTED', false);
    book.record('n', 'STOPPED', false);
    expect(book.check('n', 'STOPPED')).toEqual({ state: 'met' });
    // The STARTED came before the STOPPED just used: it cannot answer a later WAITFOR.
    expect(book.check('n', 'STARTED')).toEqual({ state: 'waiting' });
    expect(book.check('n', 'STOPPED')).toEqual({ state: 'waiting' });
    book.record('n', 'STARTED', false);
    expect(book.check('n', 'STARTED')).toEqual({ state: 'met' });
  });

  it('keeps statuses per node', () => {
    const book = new StatusBook();
    book.record('a', 'DONE', false);
    expect(book.check('b', 'DONE')).toEqual({ state: 'waiting' });
    expect(book.check('a', 'DONE')).toEqual({ state: 'met' });
  });

  it('treats ALIVE as presence: any latest status but OFFLINE, retained or not', () => {
    const book = new StatusBook();
    expect(book.check('n', 'ALIVE')).toEqual({ state: 'waiting' });
    book.record('n', 'TERMINATED', true);
    expect(book.check('n', 'ALIVE')).toEqual({ state: 'met' });
    expect(book.check('n', 'ALIVE')).toEqual({ state: 'met' }); // not used up
    book.record('n', 'OFFLINE', false);
    expect(book.check('n', 'ALIVE')).toEqual({ state: 'waiting' });
    expect(book.check('n', 'OFFLINE')).toEqual({ state: 'met' });
    book.record('n', '', true); // a cleared retained status: nothing known
    expect(book.check('n', 'ALIVE')).toEqual({ state: 'waiting' });
  });

  it('fails at once when the node went OFFLINE or refused', () => {
    const book = new StatusBook();
    book.record('n', 'OFFLINE', true);
    expect(book.check('n', 'STARTED')).toEqual({ state: 'failed', reason: 'n is OFFLINE' });
    book.record('n', 'ALIVE', false);
    book.record('n', 'REFUSED', false);
    expect(book.check('n', 'STARTED')).toEqual({ state: 'failed', reason: 'n answered REFUSED' });
    expect(book.check('n', 'REFUSED')).toEqual({ state: 'met' });
    book.record('n', 'FAILED', false);
    expect(book.check('n', 'DONE')).toEqual({ state: 'failed', reason: 'n answered FAILED' });
  });
});
