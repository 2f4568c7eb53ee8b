import { openSync, closeSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeSlot, encodeSlot, parseSlotFile, SlotFile, SlotFileDamaged, slotSizeFor } from '../../src/shared/slot-file.js';
import { Cleanup } from '../support/cleanup.js';

const BLOCK = 4096;

describe('slot file layout', () => {
  it('encodes a record into a padded JSON line that decodes back, and refuses one that does not fit', () => {
    const slot = encodeSlot(7, { a: 'é', n: [1, 2] }, BLOCK)!;
    expect(slot.length).toBe(BLOCK);
    expect(slot.at(-1)).toBe(0x0a);
    expect(decodeSlot(slot)).toEqual({ seq: 7, record: { a: 'é', n: [1, 2] } });
    expect(encodeSlot(1, 'x'.repeat(BLOCK), BLOCK)).toBeNull();
  });

  it('takes a torn or altered slot for none', () => {
    const slot = encodeSlot(3, { deployed: 'a'.repeat(40) }, BLOCK)!;
    const torn = Buffer.from(slot);
    torn.fill(' ', 20, 60);
    expect(decodeSlot(torn)).toBeNull();
    // Still JSON, but not what was written: the checksum tells.
    const altered = Buffer.from(slot.toString('utf8').replace('"aaaa', '"bbbb'));
    expect(JSON.parse(altered.toString('utf8'))).toBeTruthy();
    expect(decodeSlot(altered)).toBeNull();
    expect(decodeSlot(Buffer.alloc(BLOCK, ' '))).toBeNull();
  });

  it('sizes slots in whole blocks with room for the record to grow', () => {
    expect(slotSizeFor(100)).toBe(BLOCK);
    expect(slotSizeFor(3000)).toBe(2 * BLOCK);
    expect(slotSizeFor(40_000) % BLOCK).toBe(0);
    expect(slotSizeFor(40_000)).toBeGreaterThanOrEqual(80_000);
  });

  it('reads a plain JSON file as its one record, and says what is wrong with anything else', () => {
    expect(parseSlotFile(Buffer.from('{"v":1}\n'))).toEqual({ layout: null, record: { v: 1 } });
    expect(parseSlotFile(Buffer.from('{"v":1,'))).toMatchObject({ problem: expect.stringMatching(/^is not JSON/) });
    expect(parseSlotFile(Buffer.from('{"pushfleet":"pushfleet-slots/1","slot":10}\n'))).toEqual({ problem: 'has a damaged header' });
  });
});

describe('SlotFile', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());
  const file = () => new SlotFile(join(cleanup.tempDir('pushfleet-slots-'), 'record.json'));

  it('reads back each record written, alternating slots in place without changing the size', () => {
    const f = file();
    expect(f.read()).toBeUndefined();
    f.write({ n: 1 });
    const size = statSync(f.path).size;
    expect(size).toBe(3 * BLOCK);
    expect(statSync(f.path).mode & 0o777).toBe(0o600);
    for (let n = 2; n <= 5; n++) {
      f.write({ n });
      expect(new SlotFile(f.path).read()).toEqual({ n });
    }
    expect(statSync(f.path).size).toBe(size);
    // Both slots hold a record: the newest and the one before.
    const parsed = parseSlotFile(readFileSync(f.path));
    expect(parsed).toMatchObject({ newest: { seq: 5, record: { n: 5 } } });
  });

  it('keeps the previous record when a write is torn, and writes over the torn slot next', () => {
    const f = file();
    f.write({ n: 1 });
    f.write({ n: 2 }); // slot 1
    f.write({ n: 3 }); // slot 0
    // A power loss in the middle of the next write (slot 1): half of it on disk.
    const fd = openSync(f.path, 'r+');
    writeSync(fd, encodeSlot(4, { n: 4 }, BLOCK)!.subarray(0, 30), 0, 30, 2 * BLOCK);
    closeSync(fd);
    const after = new SlotFile(f.path);
    expect(after.read()).toEqual({ n: 3 });
    after.write({ n: 4 });
    expect(parseSlotFile(readFileSync(f.path))).toMatchObject({ newest: { slot: 1, seq: 4 } });
    expect(new SlotFile(f.path).read()).toEqual({ n: 4 });
  });

  it('makes the file anew when it was removed while its owner ran', () => {
    const f = file();
    f.write({ n: 1 });
    rmSync(f.path);
    f.write({ n: 2 });
    expect(new SlotFile(f.path).read()).toEqual({ n: 2 });
    expect(statSync(f.path).mode & 0o777).toBe(0o600);
  });

  it('makes the file anew with larger slots for a record that does not fit', () => {
    const f = file();
    f.write({ n: 1 });
    const big = { tail: 'x'.repeat(10_000) };
    f.write(big);
    expect(new SlotFile(f.path).read()).toEqual(big);
    expect(statSync(f.path).size).toBe(BLOCK + 2 * slotSizeFor(JSON.stringify(big).length));
    f.write({ n: 2 });
    expect(new SlotFile(f.path).read()).toEqual({ n: 2 });
  });

  it('says the file is damaged when neither slot is intact', () => {
    const f = file();
    f.write({ n: 1 });
    const bytes = readFileSync(f.path);
    bytes.fill(' ', BLOCK, 2 * BLOCK - 1);
    writeFileSync(f.path, bytes);
    expect(() => new SlotFile(f.path).read()).toThrow(SlotFileDamaged);
    expect(() => new SlotFile(f.path).read()).toThrow(/has no intact record in either slot/);
  });
});
