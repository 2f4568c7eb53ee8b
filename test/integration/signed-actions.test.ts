import { generateKeyPairSync } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { SCHEMA_VERSION, ZERO_SHA, type PushMessage } from '../../src/shared/messages.js';
import { type AgentDirective } from '../../src/shared/contract/rollout-messages.js';
import { SignedRefusal } from '../../src/shared/signing/refusal.js';
import { sign } from '../../src/shared/signing/envelope.js';
import { keyId } from '../../src/shared/signing/keys.js';
import { agentPinTopic, agentRefusedTopic, agentRollbackTopic, headTopic, nodeCommandTopic, rolloutChannel, rolloutId, seedCommandTopic, seedStatusTopic, semaphoreTopic } from '../../src/shared/topics.js';
import { startAgentProcess } from '../support/agent-process.js';
import { linesOf, startAppFixture } from '../support/app-fixture.js';
import { Cleanup } from '../support/cleanup.js';
import { runCli } from '../support/cli-process.js';
import { githubPushPayload, postWebhook, signedRequest } from '../support/push-payload.js';
import { testSigner } from '../support/signer.js';
import { SECRET, startTestHub, watch, type BrokerKind } from '../support/test-hub.js';
import { unrestrictedUrl } from '../support/mosquitto.js';
import { waitFor } from '../support/wait.js';

const MAIN = headTopic('acme/web', 'refs/heads/main');
const OTHER = headTopic('acme/web', 'refs/heads/other');

/** A head of main for `sha`, as anyone with broker access could write it. */
const headOf = (sha: string, deliveryId: string): PushMessage => ({
  v: SCHEMA_VERSION, deliveryId, source: 'post-receive', repo: 'acme/web', ref: 'refs/heads/main', refType: 'branch', branch: 'main', tag: null,
  before: ZERO_SHA, after: sha, created: false, deleted: false, forced: false, pusher: { name: 'mallory', email: null }, headCommit: null, cloneUrl: '', receivedAt: new Date().toISOString(),
});

describe('signed actions: an agent acts only on what the hub signed', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  /** Node-1 with app web deployed at A then B by the hub, watching its refusals and the retained heads. */
  async function deployedTwice(broker: BrokerKind = 'aedes') {
    const f = await startAppFixture(cleanup, broker);
    const stateDir = join(cleanup.tempDir('pushfleet-agent-state-'), 'state');
    const agent = await startAgentProcess(cleanup, { id: 'node-1', mqttUrl: f.hub.mqttUrl, apps: [f.appConfig], stateDir });
    const refused = await watch(cleanup, f.hub.mqttUrl, agentRefusedTopic('node-1'));
    const heads = await watch(cleanup, f.hub.mqttUrl, 'pushfleet/heads/#');
    const a = f.git.commit('A', { 'app.txt': 'A\n' });
    await f.push(a);
    await f.reached('deployed', a);
    const signedA = await waitFor('the hub-signed head of A', () => heads.messages.find((m) => m.topic === MAIN && m.payload.includes(a))?.payload);
    const b = f.git.commit('B', { 'app.txt': 'B\n' });
    await f.push(b, a);
    await f.reached('deployed', b);
    const forger = await mqtt.connectAsync(await unrestrictedUrl(f.hub.mqttUrl), { reconnectPeriod: 0 });
    cleanup.defer(() => forger.endAsync(true));
    const reasons = () => refused.messages.map((m) => SignedRefusal.parse(JSON.parse(m.payload)));
    /** Publishes `bytes` on `topic` and waits for the agent to report refusing it for `reason`. */
    const refusedFor = async (reason: SignedRefusal['reason'], topic: string, bytes: Buffer | string, retain = true) => {
      const before = refused.messages.length;
      await forger.publishAsync(topic, bytes, { qos: 1, retain });
      return waitFor(() => `refusal "${reason}" on ${topic}; got ${JSON.stringify(reasons())}`, () => reasons().slice(before).find((r) => r.reason === reason && r.topic === topic));
    };
    return { f, agent, stateDir, a, b, signedA, forger, refusedFor, signer: testSigner(join(f.hub.stateDir, 'hub.key')) };
  }

  it('refuses unsigned, badly signed, unknown-key, other-topic, future, too-old and replayed messages, and nothing moves', async () => {
    const { f, a, b, signedA, refusedFor, signer } = await deployedTwice();
    const c = f.git.commit('C', { 'app.txt': 'C\n' });
    const headC = JSON.stringify(headOf(c, 'forged'));

    await refusedFor('unsigned', MAIN, headC);
    await refusedFor('bad-signature', MAIN, JSON.stringify({ ...JSON.parse(signedA), payload: headC }));
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    await refusedFor('unknown-key', MAIN, sign({ privateKey, publicKey, kid: keyId(publicKey) }, MAIN, headC, Date.now(), Date.now() * 1000));
    // A genuine head of another ref, signed by the hub for that ref's topic.
    const other = await watch(cleanup, f.hub.mqttUrl, OTHER);
    expect((await postWebhook(f.hub.webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ after: c, ref: 'refs/heads/other' })))).status).toBe(200);
    const signedOther = await waitFor('the hub-signed head of the other ref', () => other.messages[0]?.payload);
    await refusedFor('wrong-topic', MAIN, signedOther);
    await refusedFor('future', MAIN, signer.seal(MAIN, headC, { ts: Date.now() + 3_600_000 }));
    const rollback: AgentDirective = { v: SCHEMA_VERSION, kind: 'rollback', app: 'web', sha: a, rolloutId: null, by: 'mallory', at: new Date().toISOString() };
    await refusedFor('too-old', agentRollbackTopic('node-1'), signer.seal(agentRollbackTopic('node-1'), JSON.stringify(rollback), { ts: Date.now() - 600_000 }), false);
    await refusedFor('replayed', MAIN, signedA);
    // Without a signature a pin is no pin, and an empty one no unpin.
    await refusedFor('unsigned', agentPinTopic('node-1', 'web'), JSON.stringify({ ...rollback, kind: 'pin' }));

    const last = await f.until('the refusal in the app state', (s) => s.refusedHead?.reason.startsWith('replayed') === true);
    expect(last).toMatchObject({ state: 'deployed', sha: b, refusedHead: { topic: MAIN, deliveryId: null } });
    await new Promise((r) => setTimeout(r, 1000));
    expect(f.git.headOf(f.path)).toBe(b);
    expect(linesOf(f.restartLog)).toEqual([a, b]);
    expect(f.states().at(-1)).toMatchObject({ state: 'deployed', sha: b });
  });

  it('still deploys what the hub signs: a push, a pin, an unpin (a signed empty pin), a rollback signed with its key', async () => {
    const { f, a, b, signer } = await deployedTwice();
    const cli = (...args: string[]) => runCli([...args, '--mqtt-url', f.hub.mqttUrl]);
    expect((await cli('rollout', 'pin', 'node-1', 'web', a)).code).toBe(0);
    await f.until('pinned to A', (s) => s.pinnedSha === a && s.state === 'deployed' && s.sha === a);
    expect((await cli('rollout', 'unpin', 'node-1', 'web')).code).toBe(0);
    await f.until('unpinned, back on B', (s) => s.pinnedSha === null && s.state === 'deployed' && s.sha === b);
    // A rollback as the hub signs it (a fresh one: not older than the max age).
    const rollback: AgentDirective = { v: SCHEMA_VERSION, kind: 'rollback', app: 'web', sha: a, rolloutId: null, by: 'hub', at: new Date().toISOString() };
    const client = await mqtt.connectAsync(f.hub.mqttUrl, { reconnectPeriod: 0 });
    cleanup.defer(() => client.endAsync(true));
    await client.publishAsync(agentRollbackTopic('node-1'), signer.seal(agentRollbackTopic('node-1'), JSON.stringify(rollback)), { qos: 1 });
    await f.until('rolled back to A', (s) => s.state === 'deployed' && s.sha === a);
    const c = f.git.commit('C', { 'app.txt': 'C\n' });
    expect((await f.push(c, b)).status).toBe(200);
    await f.reached('deployed', c);
    expect(f.git.headOf(f.path)).toBe(c);
  });

  it('still refuses a replay of an older signed head after kill -9 and a restart', async () => {
    // On mosquitto, so the replay can be the only head retained when the agent comes back: the hub, which would put its own back, is stopped.
    const { f, agent, stateDir, a, b, signedA, forger } = await deployedTwice('mosquitto');
    await agent.stop('SIGKILL');
    await f.hub.stop();
    await forger.publishAsync(MAIN, signedA, { qos: 1, retain: true });
    const refused = await watch(cleanup, f.hub.mqttUrl, agentRefusedTopic('node-1'));
    await startAgentProcess(cleanup, { id: 'node-1', mqttUrl: f.hub.mqttUrl, apps: [f.appConfig], stateDir });
    await waitFor(() => `the replay refused; got ${JSON.stringify(refused.messages)}`, () => refused.messages.some((m) => SignedRefusal.parse(JSON.parse(m.payload)).reason === 'replayed'));
    await new Promise((r) => setTimeout(r, 1000));
    expect(f.git.headOf(f.path)).toBe(b);
    expect(linesOf(f.restartLog)).toEqual([a, b]);
  });

  it('refuses a forged rollout grant: a waiting host stays waiting until the hub signs its go', async () => {
    const f = await startAppFixture(cleanup, 'aedes', { rollout: true });
    await startAgentProcess(cleanup, { id: 'node-1', mqttUrl: f.hub.mqttUrl, apps: [f.appConfig] });
    const refused = await watch(cleanup, f.hub.mqttUrl, agentRefusedTopic('node-1'));
    const cli = (...args: string[]) => runCli([...args, '--mqtt-url', f.hub.mqttUrl]);
    expect((await cli('rollout', 'freeze', 'default')).code).toBe(0);
    const a = f.git.commit('A', { 'app.txt': 'A\n' });
    expect((await f.push(a)).status).toBe(200);
    await f.until('waiting for its grant', (s) => s.state === 'waiting' && s.targetSha === a);
    // The seed's plain go (the uid, live) is what a client without tokens takes as its own.
    const go = semaphoreTopic('coordinosaur', rolloutChannel(rolloutId('web', 'default', a)), 'go', 'node-1');
    const forger = await mqtt.connectAsync(f.hub.mqttUrl, { reconnectPeriod: 0 });
    cleanup.defer(() => forger.endAsync(true));
    await forger.publishAsync(go, 'node-1', { qos: 1 });
    await waitFor(() => `the forged go refused; got ${JSON.stringify(refused.messages)}`, () => refused.messages.some((m) => m.topic && JSON.parse(m.payload).topic === go && JSON.parse(m.payload).reason === 'unsigned'));
    await new Promise((r) => setTimeout(r, 1000));
    expect(f.states().at(-1)).toMatchObject({ state: 'waiting', targetSha: a });
    expect(linesOf(f.restartLog)).toEqual([]);
    expect((await cli('rollout', 'unfreeze', 'default')).code).toBe(0);
    await f.reached('deployed', a);
  });

  it('refuses a forged head, and the hub neither stores it nor leaves it retained: its own head goes back', async () => {
    const { f, b, forger } = await deployedTwice();
    // As the flood: many forged retained heads, on the hub's topic and on new ones.
    const forged = Array.from({ length: 50 }, (_, i) => ({ topic: i === 0 ? MAIN : headTopic('acme/web', `refs/heads/fake-${i}`), payload: JSON.stringify(headOf(b, `fake-${i}`)) }));
    await Promise.all(forged.map((m) => forger.publishAsync(m.topic, m.payload, { qos: 1, retain: true })));
    let retained: string[] = [];
    await waitFor(() => `only the hub's own head retained; got ${retained.join(', ')}`, async () => {
      const fresh = await watch(cleanup, f.hub.mqttUrl, 'pushfleet/heads/#');
      await new Promise((r) => setTimeout(r, 300));
      retained = fresh.messages.map((m) => m.topic);
      return fresh.messages.length === 1 && fresh.messages[0]!.topic === MAIN && JSON.parse(fresh.messages[0]!.payload).pushfleet === 'signed/v1';
    });
    expect(f.git.headOf(f.path)).toBe(b);
    const db = new Database(join(f.hub.stateDir, 'hub.sqlite'), { readonly: true });
    try {
      expect(db.prepare('SELECT topic FROM heads').all()).toEqual([{ topic: MAIN }]);
    } finally {
      db.close();
    }
  });
});

describe('orchestrator commands', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('refuses an unsigned native command and, unless opted in, every seed command; nothing runs', async () => {
    const hub = await startTestHub(cleanup, 'aedes');
    const marker = join(cleanup.tempDir('pushfleet-marker-'), 'ran');
    const touch = { command: [process.execPath, '-e', `require('fs').appendFileSync(${JSON.stringify(marker)}, 'ran\\n')`] };
    const statuses = await watch(cleanup, hub.mqttUrl, seedStatusTopic('testlab', 'node-9'));
    const refused = await watch(cleanup, hub.mqttUrl, agentRefusedTopic('node-9'));
    await startAgentProcess(cleanup, { id: 'node-9', mqttUrl: hub.mqttUrl, orchestrator: { actions: { TOUCH: touch } } });
    const client = await mqtt.connectAsync(hub.mqttUrl, { reconnectPeriod: 0 });
    cleanup.defer(() => client.endAsync(true));
    await client.publishAsync(seedCommandTopic('testlab', 'node-9'), 'TOUCH', { qos: 1 });
    await waitFor(() => `REFUSED; got ${statuses.messages.map((m) => m.payload).join(', ')}`, () => statuses.messages.some((m) => m.payload === 'REFUSED'));
    await waitFor('the seed command reported', () => refused.messages.some((m) => JSON.parse(m.payload).topic === seedCommandTopic('testlab', 'node-9')));
    const start = { v: SCHEMA_VERSION, kind: 'start', runId: 'r1', stepId: 's1', action: 'TOUCH', args: [], startAt: Date.now(), durationMs: null, sentAt: Date.now() };
    await client.publishAsync(nodeCommandTopic('node-9'), JSON.stringify(start), { qos: 1 });
    await waitFor(() => `the native command refused; got ${JSON.stringify(refused.messages)}`, () => refused.messages.some((m) => JSON.parse(m.payload).topic === nodeCommandTopic('node-9') && JSON.parse(m.payload).reason === 'unsigned'));
    await new Promise((r) => setTimeout(r, 1000));
    expect(existsSync(marker)).toBe(false);
  });
});

describe('signing keys at start-up', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('`keys init` writes the pair once, refuses to overwrite without --force, and prints the agent line', async () => {
    const dir = cleanup.tempDir('pushfleet-keys-');
    const first = await runCli(['keys', 'init', '--dir', dir]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`hubPublicKey: ${join(dir, 'hub.pub')}`);
    const again = await runCli(['keys', 'init', '--dir', dir]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exist.*--force/);
    expect((await runCli(['keys', 'init', '--dir', dir, '--force'])).code).toBe(0);
  });

  it('names signing.key and hubPublicKey when they cannot be read', async () => {
    const dir = cleanup.tempDir('pushfleet-keys-');
    const hubFile = join(dir, 'hub.yaml');
    writeFileSync(hubFile, JSON.stringify({ stateDir: join(dir, 'hub'), http: { port: 0 }, broker: { port: 0 }, webhook: { secret: SECRET }, signing: { key: join(dir, 'missing.key') } }));
    const hub = await runCli(['hub', '--config', hubFile]);
    expect(hub.code).toBe(2);
    expect(hub.stderr).toMatch(/signing\.key: cannot use .*missing\.key/);
    const agentFile = join(dir, 'agent.yaml');
    const app = { name: 'web', repo: 'acme/web', branch: 'main', path: join(dir, 'web'), restart: ['true'] };
    writeFileSync(agentFile, JSON.stringify({ mqtt: { url: 'mqtt://127.0.0.1:1' }, stateDir: join(dir, 'agent'), hubPublicKey: join(dir, 'missing.pub'), apps: [app] }));
    const agent = await runCli(['agent', '--config', agentFile]);
    expect(agent.code).toBe(2);
    expect(agent.stderr).toMatch(/hubPublicKey: cannot use .*missing\.pub/);
    writeFileSync(agentFile, JSON.stringify({ mqtt: { url: 'mqtt://127.0.0.1:1' }, stateDir: join(dir, 'agent'), apps: [app] }));
    const none = await runCli(['agent', '--config', agentFile]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/hubPublicKey: required/);
  });
});
