import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseSeedPlaybook } from '../../src/hub/engines/orchestrator/seed-playbook.js';

const sample = readFileSync(fileURLToPath(new URL('../fixtures/playbooks/playbook.sample', import.meta.url)), 'utf8');

describe('seed playbook', () => {
  it('parses the sample: comments skipped, each verb with its fields', () => {
    const { instructions, errors } = parseSeedPlaybook(sample);
    expect(errors).toEqual([]);
    expect(instructions.map((i) => i.verb)).toEqual(expect.arrayContaining(['WAITFOR', 'SEND', 'WAIT', 'RECEIVE']));
    expect(instructions[0]).toMatchObject({ verb: 'WAITFOR', node: 'node1', status: 'ALIVE', timeoutSeconds: null });
    expect(instructions.find((i) => i.verb === 'SEND' && i.node === 'node1')).toMatchObject({ message: 'START 127.0.0.1 5201 1' });
    expect(instructions.find((i) => i.verb === 'RECEIVE')).toMatchObject({ port: 6000, file: 'test.txt' });
    expect(instructions.find((i) => i.verb === 'WAIT')).toMatchObject({ seconds: 2 });
  });

  it('joins the words of a SEND with single spaces and keeps line numbers', () => {
    const { instructions } = parseSeedPlaybook('# header\r\n\r\n  SEND  node2   START\t5201  \r\nWAIT 0.5\n');
    expect(instructions).toEqual([
      { verb: 'SEND', lineNo: 3, text: 'SEND  node2   START\t5201', node: 'node2', message: 'START 5201' },
      { verb: 'WAIT', lineNo: 4, text: 'WAIT 0.5', seconds: 0.5 },
    ]);
  });

  it('refuses a RECEIVE file that is not a plain name: it could leave --out-dir', () => {
    for (const name of ['../escape.txt', '/etc/cron.d/x', 'sub/test.txt', '..', '.', 'a\\b']) {
      const { errors, instructions } = parseSeedPlaybook(`RECEIVE 6000 ${name}`);
      expect(instructions, name).toEqual([]);
      expect(errors, name).toEqual([`line 1: RECEIVE needs a plain file name (no "/", not "." or ".."): it is written into --out-dir: RECEIVE 6000 ${name}`]);
    }
    expect(parseSeedPlaybook('RECEIVE 6000 ..report.txt').instructions[0]).toMatchObject({ file: '..report.txt' });
  });

  it('takes an optional WAITFOR timeout (our addition)', () => {
    expect(parseSeedPlaybook('WAITFOR node1 STOPPED 30').instructions[0]).toMatchObject({ timeoutSeconds: 30 });
  });

  it('lists every bad line at once instead of skipping it as the seed did', () => {
    const { errors } = parseSeedPlaybook('SEND node1\nWAIT soon\nWAITFOR node1\nRECEIVE 70000 out.txt\nSEND node/1 START\nECHO hi\nWAITFOR a B C\n');
    expect(errors).toHaveLength(7);
    expect(errors[0]).toMatch(/^line 1: SEND needs a command/);
    expect(errors[4]).toMatch(/^line 5: SEND needs a node name/);
    expect(errors[5]).toMatch(/^line 6: unknown instruction "ECHO"/);
    expect(parseSeedPlaybook('# only comments\n').errors).toEqual(['the playbook has no instructions']);
  });
});
