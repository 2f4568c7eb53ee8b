import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AppState, decode } from '../../src/shared/messages.js';
import { appStateTopic } from '../../src/shared/topics.js';
import { recordingRestart, startAgentProcess } from '../support/agent-process.js';
import { Cleanup } from '../support/cleanup.js';
import { GitFixture } from '../support/git-fixture.js';
import { freePort } from '../support/ports.js';
import { githubPushPayload, postWebhook, signedRequest } from '../support/push-payload.js';
import { SECRET, startTestHub, watch } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

describe('retained heads', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('clears the head of a deleted branch while still publishing the event', async () => {
    const hub = await startTestHub(cleanup, 'aedes');
    const sha = 'e'.repeat(40);
    await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ after: sha, ref: 'refs/heads/feature' })));
    await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ before: sha, after: '0'.repeat(40), ref: 'refs/heads/feature', deleted: true })));
    const events = await watch(cleanup, hub.mqttUrl, 'github/acme/web');
    const heads = await watch(cleanup, hub.mqttUrl, 'pushfleet/heads/#');
    // A fresh subscriber sees no retained head for the deleted branch.
    await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ after: sha, ref: 'refs/heads/marker' })));
    await waitFor('marker head and event', () => heads.messages.some((m) => m.topic.endsWith('marker')) && events.messages.length > 0);
    expect(heads.messages.map((m) => m.topic)).toEqual(['pushfleet/heads/acme/web/refs%2Fheads%2Fmarker']);
    expect(events.messages).toHaveLength(1);
  });

  it('survives a restart of the hub and its embedded broker, so a late agent still converges', async () => {
    const git = new GitFixture();
    cleanup.defer(() => git.remove());
    const brokerPort = await freePort();
    const first = await startTestHub(cleanup, 'aedes', { broker: { port: brokerPort } });
    const sha = git.commit('release', { 'app.txt': 'v1\n' });
    expect((await postWebhook(first.webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ after: sha })))).status).toBe(200);
    await first.stop();

    const second = await startTestHub(cleanup, 'aedes', { broker: { port: brokerPort }, stateDir: first.stateDir });
    const states = await watch(cleanup, second.mqttUrl, appStateTopic('late', 'web'));
    await startAgentProcess(cleanup, {
      id: 'late',
      mqttUrl: second.mqttUrl,
      apps: [{ name: 'web', repo: 'acme/web', branch: 'main', path: git.workdir('web'), remote: git.bare, restart: recordingRestart(join(git.root, 'r.log')) }],
    });
    await waitFor('deployed', () => states.messages.map((m) => decode(AppState, m.payload)).some((d) => d.ok && d.value.state === 'deployed' && d.value.sha === sha));
    expect(git.headOf(git.workdir('web'))).toBe(sha);
  });
});
