import { hostname, userInfo } from 'node:os';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServicesRequest, ServiceView } from '../../src/shared/contract/services-engine-messages.js';
import { runCli } from '../support/cli-process.js';
import { Cleanup } from '../support/cleanup.js';
import { answerServicesRequests, FakeServicesApi } from '../support/fake-services-api.js';
import { startMosquitto } from '../support/mosquitto.js';

// Real `pushfleet services` processes against a real mosquitto with the topic table's ACL: the
// CLI logs in as an operator, the test answers pushfleet/services/request as the hub's engine does.

const AT = '2026-12-01T10:00:00.000Z';

describe('pushfleet services', () => {
  const cleanup = new Cleanup();
  const api = new FakeServicesApi();
  let taken: ServicesRequest[] = [];
  let flags: string[] = [];
  let hub: mqtt.MqttClient;

  beforeAll(async () => {
    const broker = await startMosquitto({ auth: true });
    cleanup.defer(() => broker.stop());
    hub = await mqtt.connectAsync((await broker.user('hub', 'hub')).url, { reconnectPeriod: 0 });
    cleanup.defer(() => hub.endAsync(true));
    taken = await answerServicesRequests(hub, api);
    flags = ['--mqtt-url', (await broker.user('alice', 'operator')).url, '--wait', '10'];
  });
  afterAll(() => cleanup.run());

  const cli = (...args: string[]) => runCli(['services', ...args, ...flags]);

  it('add sends the service as given, by user@host, and prints what the hub made of it; --json prints the view', async () => {
    const added = await cli('add', 'sensor-1', '--action', 'read-sensor', '--arg', '--port 3 --fast', '--selector', 'zone=lab', '--selector', 'rack=a=1');
    expect(added).toMatchObject({ code: 0, stdout: 'service sensor-1 added: queued (no agent offers it yet)\n' });
    expect(taken.at(-1)).toMatchObject({ op: 'add', by: `${userInfo().username}@${hostname()}`, service: { name: 'sensor-1', action: 'read-sensor', arg: '--port 3 --fast', selector: { zone: 'lab', rack: 'a=1' } } });
    const asJson = await cli('add', 'sensor-2', '--action', 'read-sensor', '--json');
    expect(asJson.code).toBe(0);
    expect(JSON.parse(asJson.stdout)).toEqual(api.services.get('sensor-2'));
    expect(taken.at(-1)).toMatchObject({ service: { arg: '', selector: {} } });
  });

  it('ls, show, logs and servers print tables, placement history and output; paging flags reach the hub', async () => {
    for (let i = 3; i <= 5; i++) await api.add({ name: `sensor-${i}`, action: 'read-sensor', arg: '', selector: {} }, 'test');
    const placement = (agent: string, generation: number, end?: string) => ({ agent, generation, restarts: generation - 1, placedAt: AT, runningAt: AT, ...(end && { endedAt: AT, endReason: end }) });
    const { reason: _queued, ...queued } = api.services.get('sensor-3')!;
    api.services.set('sensor-3', { ...queued, status: 'running', generation: 3, current: placement('a2', 3), history: [placement('a1', 2, 'agent a1 lost (last will)'), placement('a1', 1, 'crash loop')] } satisfies ServiceView);
    api.outputs.set('sensor-3', [2, 3].map((generation) => ({ name: 'sensor-3', agent: generation === 3 ? 'a2' : 'a1', generation, restarts: 0, at: AT, output: `copy ${generation} says hi\n` })));
    api.serverList.push({ agent: 'a1', online: false, labels: { zone: 'lab' }, actions: ['read-sensor'], maxWorkers: 2, used: 0, services: [] }, { agent: 'a2', online: true, labels: {}, actions: ['read-sensor', 'log'], maxWorkers: 4, used: 1, services: ['sensor-3'] });

    const [all, paged, running, shown, current, older, serverList] = await Promise.all([
      cli('ls'),
      cli('ls', '--offset', '1', '--limit', '2'),
      cli('ls', '--status', 'running', '--json'),
      cli('show', 'sensor-3'),
      cli('logs', 'sensor-3'),
      cli('logs', 'sensor-3', '--generation', '2'),
      cli('servers'),
    ]);
    expect(all.code).toBe(0);
    expect(all.stdout.split('\n')[0]).toMatch(/^NAME\s+STATUS\s+GEN\s+AGENT\s+ACTION\s+REASON$/);
    expect(all.stdout).toMatch(/sensor-3\s+running\s+3\s+a2\s+read-sensor/);
    expect(all.stdout).toMatch(/sensor-1\s+queued\s+0\s+-\s+read-sensor\s+no agent offers it yet/);
    expect(all.stdout).not.toContain('--offset');
    expect(paged.stdout).toContain('(2-3 of 5 services; --offset 3 for more)');
    expect(paged.stdout).toMatch(/sensor-2[\s\S]*sensor-3/);
    expect(paged.stdout).not.toContain('sensor-1');
    expect(taken.filter((r) => r.op === 'ls').map((r) => (r as { page: unknown }).page)).toContainEqual({ offset: 1, limit: 2 });
    expect(JSON.parse(running.stdout)).toMatchObject({ total: 1, items: [{ name: 'sensor-3' }] });

    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^status\s+running$/m);
    expect(shown.stdout).toMatch(/^placed on\s+a2 \(generation 3, 2 restarts\)$/m);
    const history = shown.stdout.slice(shown.stdout.indexOf('placements (newest first):')).split('\n');
    expect(history[1]).toMatch(/^GEN\s+AGENT\s+RESTARTS\s+PLACED\s+RUNNING\s+ENDED\s+END$/);
    expect(history[2]).toMatch(/^3\s+a2\s+2\s+2026-12-01T10:00:00Z\s+2026-12-01T10:00:00Z\s+-\s+current$/);
    expect(history[3]).toMatch(/^2\s+a1\s+1\s.*agent a1 lost \(last will\)$/);
    expect(history[4]).toMatch(/^1\s+a1\s+0\s.*crash loop$/);

    expect(current).toMatchObject({ code: 0, stdout: 'copy 3 says hi\n' });
    expect(current.stderr).toContain('sensor-3 generation 3 on a2');
    expect(older).toMatchObject({ code: 0, stdout: 'copy 2 says hi\n' });

    expect(serverList.stdout).toMatch(/a1\s+offline\s+0\/2\s+read-sensor\s+zone=lab\s+-/);
    expect(serverList.stdout).toMatch(/a2\s+online\s+1\/4\s+read-sensor,log\s+-\s+sensor-3/);
  });

  it('rm cancels; the hub\'s refusals are one line and exit 1; bad usage exits 2 and sends nothing', async () => {
    await api.add({ name: 'doomed', action: 'read-sensor', arg: '', selector: {} }, 'test');
    expect(await cli('rm', 'doomed')).toMatchObject({ code: 0, stdout: 'service doomed: removed\n' });
    expect(taken.at(-1)).toMatchObject({ op: 'rm', name: 'doomed' });

    const refused = await Promise.all([cli('rm', 'doomed'), cli('show', 'doomed'), cli('add', 'sensor-1', '--action', 'read-sensor'), cli('logs', 'sensor-1')]);
    expect(refused.map((r) => [r.code, r.stderr])).toEqual([
      [1, 'pushfleet: no service "doomed"\n'],
      [1, 'pushfleet: no service "doomed"\n'],
      [1, 'pushfleet: service "sensor-1" exists; remove it first or pick another name\n'],
      [1, 'pushfleet: service "sensor-1" has no output\n'],
    ]);

    const before = taken.length;
    const usage = await Promise.all([
      cli('add', 'Bad_Name', '--action', 'a'),
      cli('add', 'ok', '--action', 'a', '--selector', 'novalue'),
      cli('add', 'ok', '--action', 'a', '--selector', 'k=1', '--selector', 'k=2'),
      cli('add', 'ok'),
      cli('add', 'request', '--action', 'a'),
      cli('ls', '--limit', '1001'),
      cli('ls', '--status', 'sleeping'),
      cli('logs', 'ok', '--generation', '0'),
      cli('servers', '--offset', '-1'),
    ]);
    for (const r of usage) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/^error: /);
    }
    expect(usage.map((r) => r.stderr.split('\n')[0])).toEqual([
      expect.stringContaining("for argument 'name'. use 1-63 lowercase letters"),
      expect.stringContaining('expected k=v'),
      expect.stringContaining('label "k" given twice'),
      expect.stringContaining("required option '--action <action>' not specified"),
      expect.stringContaining('reserved'),
      expect.stringContaining('expected at most 1000'),
      expect.stringContaining("'--status <status>' argument 'sleeping' is invalid"),
      expect.stringContaining('expected at least 1'),
      expect.stringContaining('expected a whole number'),
    ]);
    expect(taken.length).toBe(before);
  });

  it('--help on the group and every subcommand, exit 0', async () => {
    const helps = await Promise.all(['', 'add', 'rm', 'ls', 'show', 'logs', 'servers'].map((sub) => runCli(['services', ...(sub ? [sub] : []), '--help'])));
    for (const h of helps) expect(h.code, h.stderr).toBe(0);
    expect(helps[0]!.stdout).toMatch(/add \[options\] <name>[\s\S]*servers \[options\]/);
    expect(helps[1]!.stdout).toMatch(/--action <action>[\s\S]*--arg <string>[\s\S]*--selector <k=v>/);
    for (const h of helps.slice(1)) expect(h.stdout).toContain('--json');
    expect(helps[3]!.stdout).toMatch(/--offset <n>[\s\S]*--limit <n>[\s\S]*--status <status>/);
    expect(helps[5]!.stdout).toContain('--generation <g>');
  });

  it('with nobody answering, it gives up after --wait with one line naming what to check', async () => {
    await hub.unsubscribeAsync('pushfleet/services/request');
    const r = await runCli(['services', 'ls', ...flags.slice(0, 2), '--wait', '1']);
    expect(r).toMatchObject({ code: 1, stderr: 'pushfleet: no answer from the hub within 1 s: is it running, with engines.services enabled, on this broker?\n' });
  });
});
