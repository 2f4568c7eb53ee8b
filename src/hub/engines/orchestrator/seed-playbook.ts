import { TOPIC_LEVEL } from '../../../shared/topics.js';

/**
 * The seed's (MQTT-Orchestrate) playbook: one instruction per line, `#` comments.
 *   SEND <node> <words…>           publish the words to <root>/<node>/COMMAND
 *   WAIT <seconds>                  sleep
 *   WAITFOR <node> <STATUS> [<s>]   wait for the node's status (optional timeout: our addition)
 *   RECEIVE <port> <file>           accept one TCP connection in the background, save what arrives
 *                                   in <file>: a plain name, written into `play --out-dir`
 */
export type SeedInstruction =
  | { verb: 'SEND'; lineNo: number; text: string; node: string; message: string }
  | { verb: 'WAIT'; lineNo: number; text: string; seconds: number }
  | { verb: 'WAITFOR'; lineNo: number; text: string; node: string; status: string; timeoutSeconds: number | null }
  | { verb: 'RECEIVE'; lineNo: number; text: string; port: number; file: string };

export type SeedParse = { instructions: SeedInstruction[]; errors: string[] };

/** A name that stays inside the directory it is joined to: no directories, not `.` or `..`. */
export const isPlainFileName = (name: string): boolean => name !== '.' && name !== '..' && !/[/\\\0]/.test(name);

const seconds = (word: string | undefined): number | null => {
  if (word === undefined || !/^\d+(?:\.\d+)?$/.test(word)) return null;
  return Number(word);
};

function parseLine(words: string[], lineNo: number, text: string): SeedInstruction | string {
  const [verb, a, b, c, ...rest] = words;
  const node = (n: string | undefined) => (n && TOPIC_LEVEL.test(n) ? n : null);
  switch (verb) {
    case 'SEND': {
      if (!node(a)) return 'SEND needs a node name (letters, digits, ".", "_", "-")';
      if (words.length < 3) return 'SEND needs a command after the node name';
      // Words re-joined with single spaces: the node splits on whitespace anyway.
      return { verb, lineNo, text, node: a!, message: words.slice(2).join(' ') };
    }
    case 'WAIT': {
      const s = seconds(a);
      if (s === null || words.length !== 2) return 'WAIT needs one number of seconds';
      return { verb, lineNo, text, seconds: s };
    }
    case 'WAITFOR': {
      if (!node(a) || !b) return 'WAITFOR needs a node name and a status';
      const timeout = c === undefined ? null : seconds(c);
      if ((c !== undefined && !timeout) || rest.length) return 'WAITFOR takes a node, a status and optionally a timeout in seconds';
      return { verb, lineNo, text, node: a!, status: b, timeoutSeconds: timeout };
    }
    case 'RECEIVE': {
      const port = Number(a);
      if (!Number.isInteger(port) || port < 1 || port > 65535 || !b || c !== undefined) return 'RECEIVE needs a port (1-65535) and a file';
      // The seed wrote wherever the line said; a playbook from elsewhere must not pick files outside --out-dir.
      if (!isPlainFileName(b)) return 'RECEIVE needs a plain file name (no "/", not "." or ".."): it is written into --out-dir';
      return { verb, lineNo, text, port, file: b };
    }
    default:
      // The seed ignored unknown lines; we refuse the whole playbook before it does anything.
      return `unknown instruction "${verb}" (expected SEND, WAIT, WAITFOR or RECEIVE)`;
  }
}

/** Parses a seed playbook, listing every bad line at once (with its number). */
export function parseSeedPlaybook(source: string): SeedParse {
  const instructions: SeedInstruction[] = [];
  const errors: string[] = [];
  source.split(/\r?\n/).forEach((raw, i) => {
    const text = raw.trim();
    if (text === '' || text.startsWith('#')) return;
    const parsed = parseLine(text.split(/\s+/), i + 1, text);
    if (typeof parsed === 'string') errors.push(`line ${i + 1}: ${parsed}: ${text}`);
    else instructions.push(parsed);
  });
  if (instructions.length === 0 && errors.length === 0) errors.push('the playbook has no instructions');
  return { instructions, errors };
}
