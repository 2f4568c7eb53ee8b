import { describe, expect, it } from 'vitest';
import { liveMembers, parseStat, type ProcStat } from '../../agent/process-group.js';

const BOOT = 'boot-1';
const rec = { pgid: 100, startTime: 5000, bootId: BOOT };
const proc = (pid: number, pgrp: number, startTime: number, zombie = false): ProcStat => ({ pid, pgrp, startTime, zombie });

describe('liveMembers: is the recorded process group still there, and the same one', () => {
  it('names the leader and its children while the leader is the recorded process', () => {
    expect(liveMembers(rec, BOOT, [proc(1, 1, 0), proc(100, 100, 5000), proc(101, 100, 5003), proc(200, 200, 6000)])).toEqual([100, 101]);
  });

  it('is none when the group has gone', () => {
    expect(liveMembers(rec, BOOT, [proc(1, 1, 0), proc(200, 200, 6000)])).toEqual([]);
  });

  it('is none when the id belongs to a later process (pid reuse): another start time', () => {
    expect(liveMembers(rec, BOOT, [proc(100, 100, 9000), proc(101, 100, 9001)])).toEqual([]);
  });

  it('is none after a reboot, even with the same id and start time', () => {
    expect(liveMembers(rec, 'boot-2', [proc(100, 100, 5000)])).toEqual([]);
  });

  it('names children left behind by a leader that exited', () => {
    expect(liveMembers(rec, BOOT, [proc(101, 100, 5003), proc(102, 100, 5100)])).toEqual([101, 102]);
  });

  it('does not take members older than the recorded leader for its children', () => {
    expect(liveMembers(rec, BOOT, [proc(101, 100, 4000)])).toEqual([]);
  });

  it('leaves out zombies: they have exited', () => {
    expect(liveMembers(rec, BOOT, [proc(100, 100, 5000, true), proc(101, 100, 5003)])).toEqual([101]);
    expect(liveMembers(rec, BOOT, [proc(100, 100, 5000, true)])).toEqual([]);
  });
});

describe('parseStat', () => {
  it('reads pid, group, start time and state, with spaces and parentheses in the command name', () => {
    const rest = ['S', '1', '4242', '4242', ...Array(15).fill('0'), '987654', '0'].join(' ');
    expect(parseStat(`4243 (my (odd) cmd) ${rest}\n`)).toEqual({ pid: 4243, pgrp: 4242, startTime: 987654, zombie: false });
    expect(parseStat(`7 (sh) ${rest.replace(/^S/, 'Z')}`)).toMatchObject({ zombie: true });
  });

  it('is null for a truncated line', () => {
    expect(parseStat('12 (sh) S 1 12')).toBeNull();
  });
});
