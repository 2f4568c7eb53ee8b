import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readOperatorCredentials } from '../../src/hub/users/operator-credential.js';
import { agentStatusTopic, appStateTopic, rolloutId } from '../../src/shared/topics.js';
import { rolloutWebApp, startAgentProcess } from '../support/agent-process.js';
import { addBrokerUser } from '../support/broker-users.js';
import { Cleanup } from '../support/cleanup.js';
import { fakeAppState, fakeStatus } from '../support/fake-agents.js';
import { GitFixture } from '../support/git-fixture.js';
import { githubPushPayload, postWebhook, signedRequest } from '../support/push-payload.js';
import { SECRET, startTestHub, type TestHub } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';
import { request } from 'node:http';

/** Screenshots of the states the tests reach, for people to look at (ignored by git). */
const SHOTS = fileURLToPath(new URL('../../test-output/dashboard/', import.meta.url));
const HOSTS = ['h1', 'h2', 'h3'];
/** Each host's restart takes this long, so a batch of one is seen updating. */
const HOLD_MS = 2500;
const HOLD = [process.execPath, '-e', 'setTimeout(() => {}, Number(process.env.HOLD_MS))'];
const HEALTH = { command: ['grep', '-qx', 'healthy', 'health.txt'], timeout: 1, interval: 0.2 };

describe('the dashboard in headless Chromium, on a real hub', () => {
  const cleanup = new Cleanup();
  let browser: Browser;
  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium' });
  });
  afterAll(() => browser?.close());
  afterEach(() => cleanup.run());

  /**
   * A tab on the hub's page. Every request the page makes passes a route that records its host
   * and refuses any other than the hub's; console errors (a Content-Security-Policy refusal is
   * one) and page errors are kept too, and documents loaded counted (live means no reload).
   */
  async function openPage(hub: TestHub, viewport = { width: 1280, height: 900 }) {
    const context: BrowserContext = await browser.newContext({ viewport });
    cleanup.defer(() => context.close());
    const hosts = new Set<string>();
    const origin = `127.0.0.1:${hub.httpPort}`;
    await context.route('**/*', (route) => {
      const host = new URL(route.request().url()).host;
      hosts.add(host);
      return host === origin ? route.continue() : route.abort();
    });
    // Every Content-Security-Policy refusal, as the page itself hears of it.
    await context.addInitScript(() => document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP refused ${e.violatedDirective}: ${e.blockedURI}`)));
    const page = await context.newPage();
    const errors: string[] = [];
    // Chromium logs each HTTP error answer (a 401 to a wrong token, a 503 of an engine that is off)
    // and each connection cut (as the test does to the stream): not the page's errors.
    page.on('console', (m) => m.type() === 'error' && !m.text().startsWith('Failed to load resource: ') && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    let documents = 0;
    page.on('request', (r) => r.resourceType() === 'document' && documents++);
    await page.goto(`http://${origin}/`);
    await page.waitForSelector('#token:focus');
    return { page, hosts: () => [...hosts], errors, documents: () => documents, origin };
  }

  async function signIn(page: Page, token: string): Promise<void> {
    await page.fill('#token', token);
    await page.press('#token', 'Enter');
  }

  const operatorToken = (hub: TestHub): string => {
    const op = readOperatorCredentials(hub.stateDir)!;
    return `${op.username}:${op.password}`;
  };

  /** The newest rollout card's progress: its status and how many hosts are done. */
  const card = (page: Page, id: string) => page.locator(`article[data-rollout="${id}"]`);
  const progressOf = async (page: Page, id: string) => {
    const c = card(page, id);
    if ((await c.count()) === 0) return undefined;
    const bar = c.locator('progress');
    return { status: await c.getAttribute('data-status'), done: Number(await bar.getAttribute('value')), hosts: Number(await bar.getAttribute('max')) };
  };

  it("shows the hub's real agents, a rollout advancing live as they update, pauses one from the page, and says why a host failed", async () => {
    const git = new GitFixture({ 'app.txt': 'v0\n', 'health.txt': 'healthy\n' });
    cleanup.defer(() => git.remove());
    const hub = await startTestHub(cleanup, 'aedes', { engines: { rollouts: { defaults: { batchSize: 1, canary: 0 } } } });
    await Promise.all(HOSTS.map((id) => startAgentProcess(cleanup, { id, mqttUrl: hub.mqttUrl, apps: [rolloutWebApp(git, id, { restart: HOLD, health: HEALTH, env: { HOLD_MS: String(HOLD_MS) } })], labels: { env: 'production' }, logLevel: 'info' })));
    const tab = await openPage(hub);
    const { page } = tab;
    await signIn(page, operatorToken(hub));
    await page.waitForSelector('body[data-ready="true"]');
    expect(await page.textContent('#who')).toBe('operator (operator)');
    // Every agent process, online, with its labels and the app it runs.
    await waitFor('three agents online on the page', async () => (await page.locator('#agents tbody tr', { hasText: 'online' }).count()) === 3);
    const agentRows = await page.locator('#agents tbody tr').allTextContents();
    for (const [i, id] of HOSTS.entries()) expect(agentRows[i]).toMatch(new RegExp(`^${id}online.*env=production.*web`));
    await page.screenshot({ path: `${SHOTS}agents.png`, fullPage: true });

    // A push: its rollout appears and advances host by host, with no reload.
    const v1 = git.commit('v1', { 'app.txt': 'v1\n' });
    expect((await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ after: v1, before: git.head() })))).status).toBe(200);
    const first = rolloutId('web', 'production', v1);
    const seen = new Set<number>();
    await waitFor(() => `rollout ${first} succeeded on the page; progress seen: ${[...seen].join(', ')}`, async () => {
      const p = await progressOf(page, first);
      if (p) seen.add(p.done);
      if (p?.done === 1 && !seen.has(-1)) {
        seen.add(-1);
        await page.screenshot({ path: `${SHOTS}rollout-progress.png`, fullPage: true });
      }
      return p?.status === 'succeeded' && p.done === 3;
    }, 40_000);
    // Seen between start and end (each host holds its batch 2.5 s): the page followed it live.
    expect([...seen].filter((n) => n >= 0)).toEqual(expect.arrayContaining([1, 2, 3]));
    expect(await card(page, first).locator('li[data-state="succeeded"]').count()).toBe(3);
    expect(tab.documents()).toBe(1);

    // The next push, paused from the page once its first host updates: no other host starts.
    const v2 = git.commit('v2', { 'app.txt': 'v2\n' });
    await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ after: v2, before: v1 })));
    const second = rolloutId('web', 'production', v2);
    await card(page, second).locator('li[data-state="updating"]').waitFor({ timeout: 20_000 });
    // By keyboard: Escape leaves it running; Enter on Pause, Tab to Confirm, Enter pauses it.
    await card(page, second).getByRole('button', { name: 'Pause' }).focus();
    await page.keyboard.press('Enter');
    await page.locator('dialog#confirm[open]').waitFor();
    expect(await page.textContent('#confirm-text')).toMatch(/^Pause rollout web\.production\.[0-9a-f]{12}\?/);
    await page.keyboard.press('Escape');
    await page.locator('dialog#confirm').waitFor({ state: 'hidden' });
    await card(page, second).getByRole('button', { name: 'Pause' }).focus();
    await page.keyboard.press('Enter');
    await page.locator('dialog#confirm[open]').waitFor();
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.locator(`article[data-rollout="${second}"][data-status="paused"]`).waitFor({ timeout: 10_000 });
    await waitFor('no host of the paused rollout updating', async () => (await card(page, second).locator('li[data-state="updating"]').count()) === 0, 15_000);
    const pausedAt = await progressOf(page, second);
    await new Promise((r) => setTimeout(r, 2 * HOLD_MS));
    // The hub's own account of it, read by the API, and what the page shows: nobody else started.
    const api = await fetch(`http://${tab.origin}/api/v1/rollouts/${second}`, { headers: { authorization: `Bearer ${operatorToken(hub)}` } });
    const detail = (await api.json()) as { status: string; hosts: { state: string }[] };
    expect(detail.status).toBe('paused');
    expect(detail.hosts.filter((h) => h.state === 'succeeded' || h.state === 'updating').length).toBeLessThan(3);
    expect(await progressOf(page, second)).toEqual(pausedAt);
    expect(pausedAt!.done).toBeLessThan(3);
    expect(HOSTS.filter((h) => git.headOf(git.workdir(h)) === v2).length).toBe(pausedAt!.done);
    await page.screenshot({ path: `${SHOTS}rollout-paused.png`, fullPage: true });

    // A push that fails its health check: the page says which host failed, and why.
    const v3 = git.commit('sick', { 'health.txt': 'sick\n' });
    await postWebhook(hub.webhookUrl, signedRequest(SECRET, 'push', githubPushPayload({ after: v3, before: v2 })));
    const third = rolloutId('web', 'production', v3);
    const failed = card(page, third).locator('li[data-state="failed"]');
    await failed.waitFor({ timeout: 30_000 });
    expect(await failed.locator('.reason').textContent()).toMatch(/health/);
    await page.locator(`article[data-rollout="${third}"][data-status="aborted"]`).waitFor({ timeout: 10_000 });
    expect(await card(page, third).locator('p.reason').textContent()).toMatch(/^1 host\(s\) failed \(threshold 1\); last: h\d: .*health/);
    await page.locator('#rollouts').screenshot({ path: `${SHOTS}rollouts-section.png` });

    // GitHub's log_url (#/rollouts/<id>) opens one rollout: first, marked, with its hosts, however old.
    await page.evaluate((id) => (location.hash = `#/rollouts/${id}`), first);
    const linked = page.locator('#rollouts article.rollout.linked');
    await linked.waitFor({ timeout: 10_000 });
    expect(await linked.getAttribute('data-rollout')).toBe(first);
    expect(await page.locator('#rollouts article.rollout').first().getAttribute('data-rollout')).toBe(first);
    expect(await linked.locator('li[data-host]').count()).toBe(3);

    expect(tab.hosts()).toEqual([tab.origin]);
    expect(tab.errors).toEqual([]);
    expect(tab.documents()).toBe(1);
  });

  it('refuses a wrong token, shows a viewer the fleet without actions (which the API refuses too), and opens a new stream when one is cut', async () => {
    const hub = await startTestHub(cleanup, 'aedes');
    // Two agents announced on their retained topics, so there is something to act on.
    const client = await mqtt.connectAsync(hub.mqttUrl, { reconnectPeriod: 0 });
    cleanup.defer(() => client.endAsync(true));
    for (const id of ['edge-1', 'edge-2']) {
      await client.publishAsync(agentStatusTopic(id), fakeStatus(id, { env: 'production' }), { qos: 1, retain: true });
      await client.publishAsync(appStateTopic(id, 'web'), fakeAppState(id, 'web'), { qos: 1, retain: true });
    }
    const viewerToken = `watcher:${await addBrokerUser(hub.usersFile!, 'watcher', 'viewer')}`;
    // The hub reads its users file again within a second (longer on a busy machine): signed in only
    // once it has. Asked from another loopback address, so these tries do not count against the page's.
    const status = () =>
      new Promise<number>((resolve, reject) =>
        request({ host: '127.0.0.1', port: hub.httpPort, path: '/api/v1/hub', localAddress: '127.0.0.9', headers: { authorization: `Bearer ${viewerToken}` } }, (res) => resolve(res.resume().statusCode!)).on('error', reject).end(),
      );
    await waitFor('the hub takes the viewer token', async () => (await status()) === 200);

    const tab = await openPage(hub, { width: 390, height: 844 });
    const { page } = tab;
    await page.screenshot({ path: `${SHOTS}sign-in-phone.png` });
    await signIn(page, 'operator:not-the-password');
    await page.locator('#login-error', { hasText: 'Token refused' }).waitFor();
    expect(await page.isHidden('#board')).toBe(true);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await page.screenshot({ path: `${SHOTS}wrong-token-phone.png` });

    await signIn(page, viewerToken);
    await page.waitForSelector('body[data-ready="true"]');
    expect(await page.textContent('#who')).toBe('watcher (viewer)');
    await waitFor('both agents on the page', async () => (await page.locator('#agents tbody tr').count()) === 2);
    await page.locator('#apps li[data-agent="edge-2"]').waitFor();
    expect(await page.locator('button.action').count()).toBe(0);
    // Kept for this tab only: a reload signs in again by itself.
    expect(await page.evaluate(() => sessionStorage.getItem('pushfleet.token'))).toBe(viewerToken);
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    await page.screenshot({ path: `${SHOTS}viewer-phone.png`, fullPage: true });
    // The stream cut (its socket destroyed on the hub's side): the page opens a new one with a new
    // ticket and reloads what it shows; notices flow again.
    execFileSync('ss', ['-K', 'src', `127.0.0.1:${hub.httpPort}`]);
    await page.locator('#live[data-state="reconnecting"]').waitFor();
    await page.locator('#live[data-state="live"]').waitFor({ timeout: 15_000 });
    await client.publishAsync(agentStatusTopic('edge-3'), fakeStatus('edge-3', { env: 'production' }), { qos: 1, retain: true });
    await waitFor('the third agent on the page, live', async () => (await page.locator('#agents tbody tr').count()) === 3);
    // What a viewer's own request gets: refused, as the page never offers it.
    const refused = await page.evaluate(async (token) => (await fetch('/api/v1/environments/production/freeze', { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status, viewerToken);
    expect(refused).toBe(403);

    // The operator gets the actions on the same data.
    await page.click('#logout');
    await signIn(page, operatorToken(hub));
    await page.waitForSelector('body[data-ready="true"]');
    await page.locator('#apps button.action', { hasText: 'Freeze' }).waitFor();
    expect(tab.hosts()).toEqual([tab.origin]);
    expect(tab.errors).toEqual([]);
  });
});
