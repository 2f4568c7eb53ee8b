import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConnectGate } from '../../src/hub/broker/connect-gate.js';

class FakeSocket extends EventEmitter {
  destroyed = false;
  paused = false;
  constructor(readonly name: string) {
    super();
  }
  pause() {
    this.paused = true;
  }
  resume() {
    this.paused = false;
  }
  destroy() {
    this.destroyed = true;
    this.emit('close');
  }
}

describe('connect gate', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());
  const setup = (inProgress: number, waitingAtMost = 10) => {
    const served: string[] = [];
    const gate = new ConnectGate((s) => served.push((s as FakeSocket).name), { inProgress, waitingAtMost, placeMs: 500 });
    return { gate, served };
  };

  it('serves a bounded number of logins at once and the rest newest first, unread until then', () => {
    const { gate, served } = setup(2);
    const sockets = ['a', 'b', 'c', 'd'].map((n) => new FakeSocket(n));
    sockets.forEach((s) => gate.admit(s));
    expect(served).toEqual(['a', 'b']);
    expect(sockets.map((s) => s.paused)).toEqual([false, false, true, true]);
    gate.done(sockets[0]!);
    gate.done(sockets[0]!); // a second end of the same login frees nothing more
    expect(served).toEqual(['a', 'b', 'd']);
    expect(sockets[3]!.paused).toBe(false);
    sockets[1]!.emit('close');
    expect(served).toEqual(['a', 'b', 'd', 'c']);
    expect(gate.counts).toEqual({ inProgress: 2, waiting: 0 });
  });

  it('skips a connection its client closed while it waited, and survives its reset', () => {
    const { gate, served } = setup(1);
    const [a, b, c] = ['a', 'b', 'c'].map((n) => new FakeSocket(n));
    [a, b, c].forEach((s) => gate.admit(s!));
    b!.emit('error', new Error('read ECONNRESET'));
    expect(b!.destroyed).toBe(true);
    gate.done(a!);
    expect(served).toEqual(['a', 'c']);
  });

  it('closes new connections at once when too many wait', () => {
    const { gate, served } = setup(1, 1);
    const [a, b, c] = ['a', 'b', 'c'].map((n) => new FakeSocket(n));
    [a, b, c].forEach((s) => gate.admit(s!));
    expect(served).toEqual(['a']);
    expect([b!.destroyed, c!.destroyed]).toEqual([false, true]);
  });

  it('takes back the place of a login that sends nothing, so idle connections cannot hold it shut', () => {
    const { gate, served } = setup(1);
    const [idle, next] = ['idle', 'next'].map((n) => new FakeSocket(n));
    gate.admit(idle!);
    gate.admit(next!);
    vi.advanceTimersByTime(499);
    expect(served).toEqual(['idle']);
    vi.advanceTimersByTime(1);
    expect(served).toEqual(['idle', 'next']);
    expect(idle!.destroyed).toBe(false);
    // Its later end does not free a second place.
    idle!.emit('close');
    expect(gate.counts).toEqual({ inProgress: 1, waiting: 0 });
  });
});
