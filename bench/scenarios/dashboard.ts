/**
 * `dashboard`: what the page costs a browser. A hub process (embedded broker) with `--agents`
 * agents (default 100, each with one app) announced on their retained topics; headless Chromium
 * (Debian's /usr/bin/chromium) loads the page `--loads` times (default 5), each in a fresh context
 * (empty cache), and signs in with the operator's token. Figures are medians over the loads:
 * bytes transferred for the page itself (HTML, CSS, modules, gzipped, headers included) and for
 * the API answers it reads to fill the board, time to first paint and first contentful paint
 * (the sign-in form), and time from sign-in to a board showing every agent.
 */
import { dirname } from 'node:path';
import mqtt from 'mqtt';
import { chromium } from 'playwright-core';
import { readOperatorCredentials } from '../../src/hub/users/operator-credential.js';
import { agentStatusTopic, appStateTopic } from '../../src/shared/topics.js';
import { Cleanup } from '../../test/support/cleanup.js';
import { fakeAppState, fakeStatus } from '../../test/support/fake-agents.js';
import { progress, startHubProcess } from '../support/processes.js';
import { percentile, round, type Figures, type Scenario } from '../scenario.js';

const CHROMIUM = '/usr/bin/chromium';

function option(args: readonly string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  const value = i === -1 ? fallback : Number(args[i + 1]);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name}: expected a positive whole number`);
  return value;
}

type Load = { pageBytes: number; apiBytes: number; firstPaintMs: number; firstContentfulPaintMs: number; boardMs: number };

async function dashboard(args: readonly string[] = []): Promise<Figures> {
  const agents = option(args, 'agents', 100);
  const loads = option(args, 'loads', 5);
  const cleanup = new Cleanup();
  try {
    const hub = await startHubProcess(cleanup);
    const operator = readOperatorCredentials(dirname(hub.hubPublicKey));
    if (!operator) throw new Error('the hub made no operator account');
    const token = `${operator.username}:${operator.password}`;
    const client = await mqtt.connectAsync(hub.mqttUrl, { reconnectPeriod: 0 });
    cleanup.defer(() => client.endAsync(true));
    progress(`announcing ${agents} agents`);
    await Promise.all(
      Array.from({ length: agents }, async (_, i) => {
        const id = `bench-${String(i).padStart(4, '0')}`;
        await client.publishAsync(agentStatusTopic(id), fakeStatus(id, { env: 'production' }), { qos: 1, retain: true });
        await client.publishAsync(appStateTopic(id, 'web'), fakeAppState(id, 'web'), { qos: 1, retain: true });
      }),
    );
    const browser = await chromium.launch({ executablePath: CHROMIUM });
    cleanup.defer(() => browser.close());
    const url = `http://127.0.0.1:${hub.httpPort}/`;
    const samples: Load[] = [];
    for (let i = 0; i < loads; i++) {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(url, { waitUntil: 'load' });
      await page.waitForSelector('#token');
      const start = Date.now();
      await page.fill('#token', token);
      await page.press('#token', 'Enter');
      await page.waitForFunction((n) => document.body.dataset.ready === 'true' && document.querySelectorAll('#agents tbody tr').length >= n, Math.min(agents, 500), { timeout: 30_000 });
      const boardMs = Date.now() - start;
      const timing = await page.evaluate(() => {
        const paint = (name: string) => performance.getEntriesByName(name)[0]?.startTime ?? NaN;
        const resources = performance.getEntriesByType('resource') as PerformanceResourceTiming[];
        const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
        const sum = (list: PerformanceResourceTiming[]) => list.reduce((a, r) => a + r.transferSize, 0);
        return {
          pageBytes: nav.transferSize + sum(resources.filter((r) => new URL(r.name).pathname.startsWith('/assets/'))),
          apiBytes: sum(resources.filter((r) => new URL(r.name).pathname.startsWith('/api/'))),
          firstPaintMs: paint('first-paint'),
          firstContentfulPaintMs: paint('first-contentful-paint'),
        };
      });
      samples.push({ ...timing, boardMs });
      await context.close();
    }
    const median = (key: keyof Load) => round(percentile(samples.map((s) => s[key]), 50), 1);
    return {
      agents,
      loads,
      'page transferred (bytes, gzip)': median('pageBytes'),
      'API answers for the board (bytes)': median('apiBytes'),
      'first paint (ms)': median('firstPaintMs'),
      'first contentful paint (ms)': median('firstContentfulPaintMs'),
      'sign-in to full board (ms)': median('boardMs'),
    };
  } finally {
    await cleanup.run();
  }
}

export const dashboardScenarios: Scenario[] = [{ name: 'dashboard', run: dashboard }];
