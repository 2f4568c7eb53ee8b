import { createHash } from 'node:crypto';
import { closeSync, fdatasyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { writePrivateFile } from './private-file.js';

/**
 * A small JSON record replaced durably with one fdatasync and no metadata change, where a
 * temp file, fsync, rename and directory fsync took two journal commits of the file system
 * (the most of an agent's time per update, ~1.5 ms each on an idle disk and 10 ms or more on a
 * busy one). The file holds a header line and two slots of a fixed size, each one JSON line padded
 * with spaces: `{"seq":n,"sha256":…,"record":…}`. A write overwrites the slot that does not hold
 * the newest record, in place, and fdatasyncs; the blocks were written when the file was made,
 * so no size or allocation changes and only data goes to disk. A write torn by a power loss
 * leaves its slot failing its checksum, and the other slot still holds the previous record: what
 * the old temp-and-rename scheme left after the same crash. The file is created, or made anew
 * with larger slots for a record that does not fit, by the atomic temp-and-rename. Readable as
 * it is (`jq . file`); a plain JSON file (the format before) is read as its one record.
 */
export type SlotLayout = { slot: number };

const MAGIC = 'pushfleet-slots/1';
/**
 * The header and every slot start on a 4 KiB boundary and fill whole 4 KiB blocks, so a torn
 * write, even one a disk makes as a read-modify-write of its 4 KiB sectors, stays in its slot.
 */
const BLOCK = 4096;

/** The header line, padded to one block. */
const headerLine = (layout: SlotLayout): Buffer => padded(`{"pushfleet":"${MAGIC}","slot":${layout.slot}}`, BLOCK)!;

/** `line` padded with spaces to `size` bytes, the last one a newline (null: it does not fit). */
function padded(line: string, size: number): Buffer | null {
  const bytes = Buffer.from(line);
  if (bytes.length + 1 > size) return null;
  const buf = Buffer.alloc(size, ' ');
  bytes.copy(buf);
  buf[size - 1] = 0x0a;
  return buf;
}

const digest = (text: string): string => createHash('sha256').update(text).digest('hex');

/** One slot's bytes: the record with its sequence and checksum, padded to `size` (null: doesn't fit). */
export function encodeSlot(seq: number, record: unknown, size: number): Buffer | null {
  const text = JSON.stringify(record);
  return padded(`{"seq":${seq},"sha256":"${digest(text)}","record":${text}}`, size);
}

/** A slot's record if it is intact (whole JSON, checksum right), else null. */
export function decodeSlot(bytes: Buffer): { seq: number; record: unknown } | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  const { seq, sha256, record } = parsed as { seq?: unknown; sha256?: unknown; record?: unknown };
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || record === undefined) return null;
  return sha256 === digest(JSON.stringify(record)) ? { seq, record } : null;
}

/** Slot size for a record of `bytes` bytes: a power of two with room to grow. */
export const slotSizeFor = (bytes: number): number => Math.max(BLOCK, 2 ** Math.ceil(Math.log2(2 * bytes + 256)));

/** What a file's bytes hold: the newest intact slot, or a plain JSON record, or why neither. */
export type Parsed = { layout: SlotLayout; newest: { slot: 0 | 1; seq: number; record: unknown } | null } | { layout: null; record: unknown } | { problem: string };

/** Reads the file's bytes (pure): slots when it starts with the header, else the whole file as JSON. */
export function parseSlotFile(bytes: Buffer): Parsed {
  const nl = bytes.indexOf(0x0a);
  let header: { pushfleet?: unknown; slot?: unknown } | null = null;
  try {
    header = nl > 0 ? JSON.parse(bytes.subarray(0, nl).toString('utf8')) : null;
  } catch {
    // not a slot file
  }
  if (header?.pushfleet !== MAGIC) {
    try {
      return { layout: null, record: JSON.parse(bytes.toString('utf8')) };
    } catch (err) {
      return { problem: `is not JSON: ${(err as Error).message}` };
    }
  }
  const slot = header.slot;
  if (typeof slot !== 'number' || !Number.isSafeInteger(slot) || slot < BLOCK || slot % BLOCK !== 0) return { problem: 'has a damaged header' };
  const at = (i: 0 | 1) => decodeSlot(bytes.subarray(BLOCK + i * slot, BLOCK + (i + 1) * slot));
  const [a, b] = [at(0), at(1)];
  const newest = a && (!b || a.seq > b.seq) ? { slot: 0 as const, ...a } : b ? { slot: 1 as const, ...b } : null;
  return { layout: { slot }, newest };
}

/** The file exists but holds no record that can be read: `why`, in words. */
export class SlotFileDamaged extends Error {
  constructor(
    readonly path: string,
    readonly why: string,
  ) {
    super(`${path} ${why}`);
  }
}

/**
 * One record in a slot file (see above). Not for concurrent writers: each file has one owner
 * (the agent's state dir is locked). Mode 0600 from the first byte.
 */
export class SlotFile {
  /** What is on disk, once read or written: the layout and which slot holds the newest record. */
  private known: { layout: SlotLayout; slot: 0 | 1; seq: number } | null = null;

  constructor(readonly path: string) {}

  /** The newest record; undefined when the file does not exist. Throws SlotFileDamaged, or why it cannot be read. */
  read(): unknown {
    let bytes: Buffer;
    try {
      bytes = readFileSync(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new Error(`cannot read ${this.path}: ${(err as Error).message}`);
    }
    const parsed = parseSlotFile(bytes);
    if ('problem' in parsed) throw new SlotFileDamaged(this.path, parsed.problem);
    if (!parsed.layout) {
      this.known = null;
      return parsed.record;
    }
    if (!parsed.newest) throw new SlotFileDamaged(this.path, 'has no intact record in either slot');
    this.known = { layout: parsed.layout, slot: parsed.newest.slot, seq: parsed.newest.seq };
    return parsed.newest.record;
  }

  /** Durable when it returns; a failed write (a full disk) throws and leaves the previous record readable. */
  write(record: unknown): void {
    if (!this.known) this.learn();
    const known = this.known;
    const seq = (known?.seq ?? 0) + 1;
    if (known) {
      const slot = known.slot === 0 ? 1 : 0;
      const bytes = encodeSlot(seq, record, known.layout.slot);
      const fd = bytes ? openExisting(this.path) : undefined;
      if (bytes && fd !== undefined) {
        try {
          writeSync(fd, bytes, 0, bytes.length, BLOCK + slot * known.layout.slot);
          fdatasyncSync(fd);
        } finally {
          closeSync(fd);
        }
        this.known = { ...known, slot, seq };
        return;
      }
    }
    // New, in the old format, outgrown, or removed since it was read: made whole, atomically.
    const layout = { slot: slotSizeFor(Buffer.byteLength(JSON.stringify(record))) };
    const first = encodeSlot(seq, record, layout.slot)!;
    writePrivateFile(this.path, Buffer.concat([headerLine(layout), first, padded('', layout.slot)!]));
    this.known = { layout, slot: 0, seq };
  }

  /** Which slot to write next, for a write before any read. */
  private learn(): void {
    try {
      this.read();
    } catch {
      this.known = null; // unreadable: made anew by the write
    }
  }
}

/** The file opened for writing in place; undefined when it is gone (removed while its owner ran). */
function openExisting(path: string): number | undefined {
  try {
    return openSync(path, 'r+');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
