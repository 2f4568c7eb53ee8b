import { describe, expect, it } from 'vitest';
import { OUTPUT_EVERY_MS, OutputTails } from '../../agent/services/output-tails.js';
import { ManualClock } from '../support/manual-clock.js';

describe('OutputTails (the tail of each copy\'s output, published at most every 2 s)', () => {
  function setup(maxChars = 1000) {
    const clock = new ManualClock(5000);
    const published: string[] = [];
    const tails = new OutputTails({ clock, maxChars, publish: (ids, output) => published.push(`${ids.name}@${ids.generation}.${ids.restarts} ${JSON.stringify(output)}`) });
    return { clock, published, tails };
  }
  const web = { name: 'web', generation: 2, restarts: 0 };

  it('publishes the first lines at once, then at most every OUTPUT_EVERY_MS while they change, and nothing while quiet', () => {
    const { clock, published, tails } = setup();
    tails.line(web, 'one');
    tails.line(web, 'two');
    clock.advance(0);
    expect(published).toEqual(['web@2.0 "one\\ntwo\\n"']);
    clock.advance(100);
    tails.line(web, 'three');
    clock.advance(OUTPUT_EVERY_MS - 101);
    expect(published).toHaveLength(1);
    clock.advance(1);
    expect(published.at(-1)).toBe('web@2.0 "one\\ntwo\\nthree\\n"');
    clock.advance(10 * OUTPUT_EVERY_MS);
    expect(published).toHaveLength(2);
  });

  it('keeps the last maxChars, publishes the whole tail at the end at once, and starts afresh for the next copy', () => {
    const { clock, published, tails } = setup(8);
    tails.line(web, 'aaaa');
    clock.advance(0);
    tails.line(web, 'bbbbbb');
    tails.ended(web);
    expect(published).toEqual(['web@2.0 "aaaa\\n"', 'web@2.0 "\\nbbbbbb\\n"']);
    clock.advance(OUTPUT_EVERY_MS); // the pending one was dropped
    expect(published).toHaveLength(2);
    const next = { ...web, restarts: 1 };
    tails.ended(next);
    expect(published.at(-1)).toBe('web@2.1 ""');
  });
});
