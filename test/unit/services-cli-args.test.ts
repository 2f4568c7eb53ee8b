import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { limitArg, offsetArg, selectorArg, serviceArgArg, serviceNameArg } from '../../src/cli/services-args.js';
import { pageNote, serversTable, servicesTable } from '../../src/cli/services-view.js';

const refusal = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidArgumentError);
    return (err as Error).message;
  }
  throw new Error('not refused');
};

describe('pushfleet services flags', () => {
  it('--selector k=v collects labels; the value may hold "=" or be empty; a key is required, given once, within the contract\'s bounds', () => {
    const once = selectorArg('zone=lab');
    expect(selectorArg('rack=a=1', once)).toEqual({ zone: 'lab', rack: 'a=1' });
    expect(selectorArg('gpu=')).toEqual({ gpu: '' });
    expect(refusal(() => selectorArg('zone'))).toMatch(/^expected k=v/);
    expect(refusal(() => selectorArg('=lab'))).toBe('expected k=v with a key');
    expect(refusal(() => selectorArg('zone=x', once))).toBe('label "zone" given twice');
    expect(refusal(() => selectorArg(`${'k'.repeat(129)}=v`))).toMatch(/at most 128/);
    expect(refusal(() => selectorArg(`k=${'v'.repeat(257)}`))).toMatch(/at most 256/);
    const full = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`k${i}`, 'v']));
    expect(refusal(() => selectorArg('one=more', full))).toBe('at most 32 labels');
  });

  it('names, arguments and counts as the contract takes them', () => {
    expect(serviceNameArg('sensor-1')).toBe('sensor-1');
    for (const bad of ['Sensor', '-x', 'x-', 'a'.repeat(64), 'a b', 'replies']) refusal(() => serviceNameArg(bad));
    expect(refusal(() => serviceArgArg('a\0b'))).toBe('holds a NUL character');
    expect(offsetArg('0')).toBe(0);
    expect(limitArg('1000')).toBe(1000);
    expect(refusal(() => limitArg('1001'))).toBe('expected at most 1000');
    for (const bad of ['', '1.5', '1e3', '-1', ' 2', '0x10']) refusal(() => offsetArg(bad));
  });

  it('the page note says where a page sits and how to get the next, and nothing for a whole list', () => {
    expect(pageNote({ items: [1, 2], total: 2, offset: 0, limit: 50 }, 'services')).toBe('');
    expect(pageNote({ items: [1, 2], total: 5, offset: 0, limit: 2 }, 'services')).toBe('(1-2 of 5 services; --offset 2 for more)\n');
    expect(pageNote({ items: [5], total: 5, offset: 4, limit: 2 }, 'servers')).toBe('(5-5 of 5 servers)\n');
    expect(pageNote({ items: [], total: 5, offset: 9, limit: 2 }, 'servers')).toBe('(none of 5 servers)\n');
    // An empty list says how to fill it rather than print a bare header.
    expect(servicesTable({ items: [], total: 0, offset: 0, limit: 50 })).toMatch(/^no services \(pushfleet services add/);
    expect(serversTable({ items: [], total: 0, offset: 0, limit: 50 })).toMatch(/^no agent offers services yet/);
  });
});
