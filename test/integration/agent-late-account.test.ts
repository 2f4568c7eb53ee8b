import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { generateCredential } from '../../src/hub/users/password-hash.js';
import { newUser, readUsers, writeUsers } from '../../src/hub/users/users-file.js';
import { withoutCredentials } from '../support/broker-users.js';
import { Cleanup } from '../support/cleanup.js';
import { CliProcess } from '../support/cli-process.js';
import { hubKeyFor } from '../support/signer.js';
import { startTestHub } from '../support/test-hub.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

// An agent started before its account exists (or while the hub has not read it yet) must keep
// trying: it loads nothing else that keeps the process alive while it waits to log in again.
it('an agent refused at its first login keeps trying and comes online once its account exists', async () => {
  const hub = await startTestHub(cleanup, 'aedes');
  const dir = cleanup.tempDir('pushfleet-agent-');
  const { password, hash } = generateCredential();
  writeFileSync(join(dir, 'password'), `${password}\n`, { mode: 0o600 });
  const config = join(dir, 'agent.yaml');
  writeFileSync(
    config,
    stringify({
      id: 'late-1',
      mqtt: { url: withoutCredentials(hub.mqttUrl), username: 'late-1', passwordFile: join(dir, 'password') },
      hubPublicKey: hubKeyFor(hub.mqttUrl),
      stateDir: join(dir, 'state'),
      apps: [{ name: 'web', repo: 'acme/web', branch: 'main', path: join(dir, 'web'), remote: join(dir, 'none.git'), restart: ['true'] }],
    }),
  );
  const agent = new CliProcess(['agent', '--config', config], { PUSHFLEET_LOG_JSON: '1' });
  cleanup.defer(() => agent.stop('SIGKILL'));
  await agent.waitForLog('a refused login', (l) => /Bad username or password/.test(String(l.err)));
  const users = readUsers(hub.usersFile!);
  users.set('late-1', newUser('agent', hash));
  writeUsers(hub.usersFile!, users);
  await agent.waitForLog('agent online', (l) => l.msg === 'agent online', 20_000);
  expect(await Promise.race([agent.exited, new Promise((r) => setTimeout(() => r('running'), 100))])).toBe('running');
});
