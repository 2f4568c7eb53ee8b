import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

describe('the npm package', () => {
  it('ships the compiled program, configs, units, hooks and READMEs, and no tests or sources', () => {
    // --ignore-scripts: prepack would rebuild dist/ under the tests that run from it.
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const files = (JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
    for (const wanted of ['dist/src/cli/main.js', 'dist/src/hub/signing-thread.js', 'dist/agent/agent.js', 'config/hub.example.yaml', 'config/agent.example.yaml', 'config/orchestrator-node.example.yaml', 'config/rollout-hub.example.yaml', 'config/rollout-agent.example.yaml', 'config/mosquitto/acl', 'config/mosquitto/pushfleet.conf', 'systemd/pushfleet-hub.service', 'systemd/pushfleet-agent.service', 'hooks/post-receive', 'README.md', 'src/hub/engines/rollouts/README.md', 'src/dashboard/index.html', 'src/dashboard/dashboard.css', 'dist/dashboard/main.js']) {
      expect(files, wanted).toContain(wanted);
    }
    const stray = files.filter((f) => /^(test|bench|dist\/test|dist\/bench)\//.test(f) || /\.(ts|map)$/.test(f) || f.startsWith('.ci/'));
    expect(stray).toEqual([]);
  });
});
