import { describe, expect, it } from 'vitest';
import { RolloutRepos } from '../../src/hub/engines/rollouts/rollout-repos.js';

describe('RolloutRepos', () => {
  it('knows a repo while at least one app follows it in a rollout', () => {
    const repos = new RolloutRepos();
    expect(repos.has('acme/web')).toBe(false);
    repos.set('a1', 'web', { rollout: true, repo: 'acme/web' });
    repos.set('a2', 'web', { rollout: true, repo: 'acme/web' });
    repos.set('a3', 'api', { rollout: false, repo: 'acme/api' });
    expect(repos.has('acme/web')).toBe(true);
    expect(repos.has('acme/api')).toBe(false);
    repos.set('a1', 'web', undefined);
    expect(repos.has('acme/web')).toBe(true);
    repos.set('a2', 'web', { rollout: false, repo: 'acme/web' });
    expect(repos.has('acme/web')).toBe(false);
  });

  it('follows an app that moves to another repo, and counts the same state sent again once', () => {
    const repos = new RolloutRepos();
    repos.set('a1', 'web', { rollout: true, repo: 'acme/web' });
    repos.set('a1', 'web', { rollout: true, repo: 'acme/web' });
    repos.set('a1', 'web', { rollout: true, repo: 'acme/site' });
    expect(repos.has('acme/web')).toBe(false);
    expect(repos.has('acme/site')).toBe(true);
    repos.set('a1', 'web', undefined);
    expect(repos.has('acme/site')).toBe(false);
  });
});
