import { describe, expect, it } from 'vitest';
import { spareSpec } from '../../agent/spare-process.js';

describe('spareSpec', () => {
  it('puts the directory, each variable and each argument on a line of its own', () => {
    expect(spareSpec(['echo', 'a b', ''], '/srv', { A: '1', B: 'x=$y "z"', C: undefined })).toBe('/srv\n2\nA=1\nB=x=$y "z"\n3\necho\na b\n\n');
  });

  it('gives up on what cannot travel as a line or be exported, so such a command is forked as before', () => {
    expect(spareSpec(['sh', '-c', 'echo 1\necho 2'], '/srv', {})).toBeNull();
    expect(spareSpec(['true'], '/srv', { 'A-B': '1' })).toBeNull();
    expect(spareSpec(['true'], '/srv', { _pf_n: '3' })).toBeNull();
    expect(spareSpec(['true'], '/srv', { A: 'a\nb' })).toBeNull();
    expect(spareSpec([], '/srv', {})).toBeNull();
  });
});
