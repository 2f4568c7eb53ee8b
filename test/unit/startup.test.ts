import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/shared/logger.js';
import { listenError, startOrUndo, StartupError, Teardown } from '../../src/shared/startup.js';

const log = createLogger('test', 'silent');

describe('Teardown', () => {
  it('undoes newest first, every step even after one fails, once, and rejects with the first failure', async () => {
    const done: string[] = [];
    const teardown = new Teardown(log);
    teardown.add('db', () => done.push('db'));
    teardown.add('broker', () => {
      done.push('broker');
      throw new Error('broker would not close');
    });
    teardown.add('http', async () => done.push('http'));
    await expect(teardown.run()).rejects.toThrow('broker would not close');
    await expect(teardown.run()).rejects.toThrow('broker would not close');
    expect(done).toEqual(['http', 'broker', 'db']);
  });
});

describe('startOrUndo', () => {
  it('undoes the steps a failed start had done and rethrows its own error, not an undo failure', async () => {
    const done: string[] = [];
    const start = startOrUndo(log, async (teardown) => {
      teardown.add('broker', () => done.push('broker closed'));
      teardown.add('client', () => {
        throw new Error('client would not end');
      });
      throw new StartupError('port in use');
    });
    await expect(start).rejects.toThrow('port in use');
    expect(done).toEqual(['broker closed']);
  });

  it('leaves a start that completed alone', async () => {
    const done: string[] = [];
    expect(await startOrUndo(log, async (teardown) => (teardown.add('x', () => done.push('x')), 'started'))).toBe('started');
    expect(done).toEqual([]);
  });
});

describe('listenError', () => {
  const err = (code: string) => Object.assign(new Error(`listen ${code} 127.0.0.1:3000`), { code });

  it('says a port in use in one line naming the setting', () => {
    const e = listenError(err('EADDRINUSE'), 'webhooks', '127.0.0.1:3000', 'http.port (--port)');
    expect(e).toBeInstanceOf(StartupError);
    expect((e as StartupError).message).toBe('cannot listen for webhooks on 127.0.0.1:3000: address already in use; stop whatever holds it or set http.port (--port)');
    expect((e as StartupError).exitCode).toBe(1);
    expect((listenError(err('EACCES'), 'MQTT', '0.0.0.0:883', 'broker.port') as Error).message).toMatch(/permission denied; use a port above 1023/);
  });

  it('passes any other error on unchanged', () => {
    const other = err('EMFILE');
    expect(listenError(other, 'webhooks', '127.0.0.1:3000', 'http.port')).toBe(other);
  });
});
