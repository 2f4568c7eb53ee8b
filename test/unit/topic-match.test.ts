import { describe, expect, it } from 'vitest';
import { topicMatches } from '../../src/shared/topic-match.js';
import { headTopic } from '../../src/shared/topics.js';

describe('topicMatches', () => {
  it.each([
    ['a/b', 'a/b', true],
    ['a/+', 'a/b', true],
    ['a/+', 'a/b/c', false],
    ['a/#', 'a/b/c', true],
    ['a/#', 'a', true],
    ['#', 'a/b', true],
    ['a/+/c', 'a/x/c', true],
    ['a/b', 'a/c', false],
    ['/coordinosaur/+/register', '/coordinosaur/x/register', true],
  ])('%s ~ %s → %s', (filter, topic, expected) => {
    expect(topicMatches(filter, topic)).toBe(expected);
  });

  it('keeps a ref in one topic level so "+" filters see it', () => {
    expect(headTopic('acme/web', 'refs/heads/release/1.2')).toBe('pushfleet/heads/acme/web/refs%2Fheads%2Frelease%2F1.2');
    expect(topicMatches('pushfleet/heads/acme/web/+', headTopic('acme/web', 'refs/heads/release/1.2'))).toBe(true);
  });
});
