import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { assertNoOverlap, readCopies } from '../support/overlap.js';

// The end-to-end tests trust this check: it must see an overlap where there is one.
describe('the services overlap check (test/support/overlap.ts)', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());
  const file = (lines: string[]) => {
    const f = join(cleanup.tempDir('pushfleet-overlap-'), 'records.log');
    writeFileSync(f, lines.map((l) => `${l}\n`).join(''));
    return f;
  };
  const ms = (n: number) => String(BigInt(n) * 1_000_000n);

  it('passes copies that ran one after the other, a killed one ending at its last tick + 50 ms', () => {
    const copies = assertNoOverlap(file([`start s 1 a1 ${ms(0)} 10`, `tick s 1 a1 ${ms(100)} 10`, `start s 2 a2 ${ms(151)} 11`, `stop s 2 a2 ${ms(300)} 11`, `start s 3 a1 ${ms(300)} 12`]));
    expect(copies.map((c) => [c.generation, c.ended])).toEqual([
      [1, 'killed'],
      [2, 'stop'],
      [3, 'killed'],
    ]);
  });

  it('fails, naming both copies, when a copy starts before the previous one ended', () => {
    const f = file([`start s 1 a1 ${ms(0)} 10`, `tick s 1 a1 ${ms(100)} 10`, `start s 2 a2 ${ms(120)} 11`, `start t 1 a1 ${ms(120)} 12`]);
    expect(() => assertNoOverlap(f)).toThrow(/service s: generation 2 on a2 \(pid 11.*started 30\.0 ms before generation 1 on a1/);
  });

  it('skips a line cut short by a kill -9', () => {
    expect(readCopies(file([`start s 1 a1 ${ms(0)} 10`, 'tick s 1 a'])).length).toBe(1);
  });
});
