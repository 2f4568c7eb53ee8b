import { describe, expect, it } from 'vitest';
import { applyUpdate, type UpdateIo } from '../../agent/apply-update.js';
import { StepError } from '../../agent/step-error.js';

const OLD = 'a'.repeat(40);
const NEW = 'b'.repeat(40);
const steps = { update: [['npm', 'ci']], restart: ['systemctl', 'restart', 'web'] };

/** A fake working copy and process runner that records every call. */
function fakeIo(opts: { head?: string | null; failOn?: (call: string) => boolean; healthy?: (sha: string) => boolean } = {}) {
  let head = opts.head === undefined ? OLD : opts.head;
  const calls: string[] = [];
  let t = 0;
  const act = async (call: string) => {
    calls.push(call);
    t += 10;
    if (opts.failOn?.(call)) throw new StepError('update', `${call} failed`, 'some output');
  };
  const io: UpdateIo = {
    head: async () => head,
    fetch: (sha) => act(`fetch ${sha.slice(0, 1)}`),
    checkout: async (sha) => {
      await act(`checkout ${sha.slice(0, 1)}`);
      head = sha;
    },
    run: (step, argv, sha) => act(`${step} ${argv[0]} ${sha.slice(0, 1)}`),
    health: opts.healthy
      ? async (sha) => {
          calls.push(`health ${sha.slice(0, 1)}`);
          if (!opts.healthy!(sha)) throw new StepError('health', 'answered 500');
        }
      : undefined,
    now: () => t,
  };
  return { io, calls, head: () => head };
}

describe('applyUpdate', () => {
  it('fetches, checks out, updates, restarts and checks health, in that order', async () => {
    const { io, calls } = fakeIo({ healthy: () => true });
    const result = await applyUpdate(steps, { sha: NEW, ref: 'refs/heads/main' }, io);
    expect(calls).toEqual(['fetch b', 'checkout b', 'update npm b', 'restart systemctl b', 'health b']);
    expect(result).toMatchObject({ state: 'deployed', sha: NEW, previousSha: OLD, error: null });
    expect(result.durations).toMatchObject({ fetch: 10, checkout: 10, update: 10, restart: 10 });
    expect(result.durations.total).toBe(40);
  });

  it('rolls back to the previous SHA when the health check fails', async () => {
    const { io, calls, head } = fakeIo({ healthy: (sha) => sha === OLD });
    const result = await applyUpdate(steps, { sha: NEW, ref: 'refs/heads/main' }, io);
    expect(calls.slice(5)).toEqual(['checkout a', 'update npm a', 'restart systemctl a', 'health a']);
    expect(result).toMatchObject({ state: 'rolled-back', sha: OLD, error: { step: 'health' } });
    expect(head()).toBe(OLD);
  });

  it('rolls back when an update command fails, keeping its output tail', async () => {
    const { io, calls } = fakeIo({ failOn: (c) => c === 'update npm b' });
    const result = await applyUpdate(steps, { sha: NEW, ref: 'refs/heads/main' }, io);
    expect(calls).toEqual(['fetch b', 'checkout b', 'update npm b', 'checkout a', 'update npm a', 'restart systemctl a']);
    expect(result.state).toBe('rolled-back');
    expect(result.error).toMatchObject({ step: 'update', outputTail: 'some output' });
    expect(result.durations.rollback).toBe(30);
  });

  it('changes nothing when the fetch fails', async () => {
    const { io, calls } = fakeIo({ failOn: (c) => c.startsWith('fetch') });
    const result = await applyUpdate(steps, { sha: NEW, ref: 'refs/heads/main' }, io);
    expect(calls).toEqual(['fetch b']);
    expect(result).toMatchObject({ state: 'failed', sha: OLD });
  });

  it('reports failed, not rolled-back, when there is nothing to roll back to', async () => {
    const { io } = fakeIo({ head: null, failOn: (c) => c.startsWith('restart') });
    const result = await applyUpdate(steps, { sha: NEW, ref: 'refs/heads/main' }, io);
    expect(result).toMatchObject({ state: 'failed', sha: NEW, previousSha: null });
  });

  it('reports failed when the rollback fails too, naming both', async () => {
    const { io } = fakeIo({ failOn: (c) => c.startsWith('restart') });
    const result = await applyUpdate(steps, { sha: NEW, ref: 'refs/heads/main' }, io);
    expect(result.state).toBe('failed');
    expect(result.error?.step).toBe('rollback');
    expect(result.error?.message).toMatch(/restart systemctl b failed.*rollback to a{40} failed too/);
  });
});
