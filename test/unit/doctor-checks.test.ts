import { describe, expect, it } from 'vitest';
import {
  brokerFailure,
  clockVerdict,
  doctorExit,
  hubKeyVerdict,
  parseLsRemote,
  pathVerdict,
  portVerdict,
  refVerdict,
  renderChecks,
  stateDirVerdict,
  subscriptionVerdict,
  systemdVerdict,
  type Check,
} from '../../src/cli/doctor-checks.js';

const estimate = (offsetMs: number, errorMs = 1) => ({ offsetMs, rttMs: errorMs * 2, errorMs, samples: 4, measuredAt: 0 });
const withCode = (message: string, code: unknown) => Object.assign(new Error(message), { code });

describe('doctor verdicts', () => {
  it('exits 1 only when a check failed', () => {
    const c = (verdict: Check['verdict']): Check => ({ check: 'x', verdict, detail: '' });
    expect(doctorExit([c('ok'), c('warn'), c('skip')])).toBe(0);
    expect(doctorExit([c('ok'), c('FAIL')])).toBe(1);
  });

  it('renders one aligned line per check, further detail lines indented under it', () => {
    const out = renderChecks([
      { check: 'config', verdict: 'FAIL', detail: 'invalid config a.yaml\napps.0.path: required' },
      { check: 'systemd', verdict: 'skip', detail: 'no systemd' },
    ]);
    expect(out).toBe('FAIL config   invalid config a.yaml\n              apps.0.path: required\nskip systemd  no systemd\n');
  });

  it('tells a refused login from an unreachable broker and a TLS failure', () => {
    expect(brokerFailure('mqtt://h:1883', 'web-1', withCode('Connection refused: Bad username or password', 4)).detail).toMatch(/refused the login of user web-1 \(bad user name or password\)/);
    expect(brokerFailure('mqtt://h:1883', undefined, withCode('Connection refused: Not authorized', 5)).detail).toMatch(/refused the login of an anonymous client \(not authorized\)/);
    expect(brokerFailure('mqtt://h:1883', 'web-1', withCode('connect ECONNREFUSED 127.0.0.1:1883', 'ECONNREFUSED')).detail).toMatch(/^mqtt:\/\/h:1883 unreachable \(ECONNREFUSED: /);
    expect(brokerFailure('mqtt://h:1883', 'web-1', new Error('no answer within 5000 ms')).detail).toMatch(/unreachable \(no answer within 5000 ms\)/);
    expect(brokerFailure('mqtts://h:8883', 'web-1', withCode('self-signed certificate', 'DEPTH_ZERO_SELF_SIGNED_CERT')).detail).toMatch(/TLS handshake failed .*mqtt\.tls/);
  });

  it("fails subscriptions the broker refused, and a login that is not the agent's own name", () => {
    expect(subscriptionVerdict('web-1', 'web-1', ['a', 'b'], []).verdict).toBe('ok');
    expect(subscriptionVerdict('web-1', undefined, ['a'], []).verdict).toBe('ok');
    const refused = subscriptionVerdict('web-1', 'web-1', ['a', 'b'], ['b']);
    expect(refused).toMatchObject({ verdict: 'FAIL', detail: expect.stringMatching(/^the broker refused b: .*pushfleet users add web-1 --role agent/) });
    expect(subscriptionVerdict('web-1', 'web-2', ['a'], []).detail).toMatch(/this login is web-2 but the agent's id is web-1/);
  });

  it('reads branch and tag names from ls-remote output, peeled tags once', () => {
    const out = `${'a'.repeat(40)}\trefs/tags/v1\n${'b'.repeat(40)}\trefs/tags/v1^{}\n${'c'.repeat(40)}\trefs/tags/v2\n${'d'.repeat(40)}\trefs/heads/main\n`;
    expect(parseLsRemote(out, 'refs/tags/')).toEqual(['v1', 'v2']);
    expect(parseLsRemote(out, 'refs/heads/')).toEqual(['main']);
    expect(parseLsRemote('', 'refs/heads/')).toEqual([]);
  });

  it('finds the followed branch or tag by name or glob, as the agent matches pushes', () => {
    const base = { name: 'web', repo: 'acme/web' };
    expect(refVerdict({ ...base, branch: 'main' }, ['main', 'dev']).verdict).toBe('ok');
    expect(refVerdict({ ...base, branch: 'release/*' }, ['main', 'release/1', 'release/2']).detail).toBe('branch "release/*" on the remote: release/1, release/2');
    expect(refVerdict({ ...base, branch: 'release/*' }, ['release/a/b'])).toMatchObject({ check: 'app web branch', verdict: 'FAIL' });
    expect(refVerdict({ ...base, tag: 'v*' }, ['v1', 'v2', 'v3', 'v4']).detail).toBe('tag "v*" on the remote: v1, v2, v3, … (4)');
    expect(refVerdict({ ...base, tag: 'v*' }, [])).toMatchObject({ check: 'app web tag', verdict: 'FAIL', detail: expect.stringMatching(/no tag matching "v\*" on the remote \(it has 0 tags\)/) });
  });

  it('judges an app path as the agent would clone into it', () => {
    const app = { name: 'web', path: '/srv/web' };
    expect(pathVerdict(app, { kind: 'work-tree', head: 'f'.repeat(40) }).detail).toBe(`/srv/web is a git work tree at ${'f'.repeat(12)}`);
    expect(pathVerdict(app, { kind: 'work-tree', head: null }).verdict).toBe('ok');
    expect(pathVerdict(app, { kind: 'not-directory' }).verdict).toBe('FAIL');
    expect(pathVerdict(app, { kind: 'not-git', entries: 3, writable: true }).detail).toMatch(/not empty and not a git work tree/);
    expect(pathVerdict(app, { kind: 'not-git', entries: 0, writable: true }).verdict).toBe('ok');
    expect(pathVerdict(app, { kind: 'not-git', entries: 0, writable: false }).verdict).toBe('FAIL');
    expect(pathVerdict(app, { kind: 'missing', ancestor: '/srv', writable: true }).verdict).toBe('ok');
    expect(pathVerdict(app, { kind: 'missing', ancestor: '/', writable: false }).detail).toMatch(/\/ is not writable by this user/);
  });

  it("checks the hub's key, and warns where unsigned messages are taken", () => {
    expect(hubKeyVerdict({ hubPublicKey: '/etc/pushfleet/hub.pub', acceptUnsigned: false }, { kid: 'abc' })).toMatchObject({ verdict: 'ok' });
    expect(hubKeyVerdict({ hubPublicKey: '/etc/pushfleet/hub.pub', acceptUnsigned: false }, { error: 'ENOENT' }).detail).toBe('hubPublicKey: cannot use /etc/pushfleet/hub.pub: ENOENT');
    expect(hubKeyVerdict({ hubPublicKey: '/etc/pushfleet/hub.pub', acceptUnsigned: true }, { kid: 'abc' }).verdict).toBe('warn');
    expect(hubKeyVerdict({ acceptUnsigned: true }, null).verdict).toBe('warn');
    expect(hubKeyVerdict({ acceptUnsigned: false }, null)).toMatchObject({ verdict: 'FAIL', detail: expect.stringMatching(/^hubPublicKey: not set/) });
  });

  it('warns above 1 s of clock offset and fails above 30 s, judged by what the measurement proves', () => {
    expect(clockVerdict(null).verdict).toBe('warn');
    expect(clockVerdict(estimate(3.25)).detail).toBe('offset to the hub 3.3 ms (±1.0 ms, 4 sample(s))');
    expect(clockVerdict(estimate(-1500)).verdict).toBe('warn');
    // 1.5 s ± 0.8 s: the true offset may be under a second.
    expect(clockVerdict(estimate(1500, 800)).verdict).toBe('ok');
    expect(clockVerdict(estimate(45_000)).verdict).toBe('FAIL');
    expect(clockVerdict(estimate(-45_000)).detail).toMatch(/^offset to the hub -45\.0 s .*run NTP/);
  });

  it('reads the unit state, and skips without systemd', () => {
    const show = (load: string, active: string, sub: string) => `LoadState=${load}\nActiveState=${active}\nSubState=${sub}`;
    expect(systemdVerdict('pushfleet-agent', null).verdict).toBe('skip');
    expect(systemdVerdict('pushfleet-agent', show('loaded', 'active', 'running'))).toMatchObject({ verdict: 'ok', detail: 'pushfleet-agent is active (running)' });
    expect(systemdVerdict('pushfleet-agent', show('loaded', 'failed', 'failed')).verdict).toBe('FAIL');
    expect(systemdVerdict('pushfleet-agent', show('loaded', 'inactive', 'dead')).detail).toMatch(/not running: `systemctl enable --now pushfleet-agent`/);
    expect(systemdVerdict('pushfleet-agent', show('not-found', 'inactive', 'dead')).verdict).toBe('warn');
    expect(systemdVerdict('pushfleet-agent', show('loaded', 'activating', 'auto-restart')).detail).toBe('pushfleet-agent is activating (auto-restart)');
  });

  it("judges the hub's state dir and ports", () => {
    expect(stateDirVerdict('/var/lib/pushfleet', { kind: 'directory', writable: true }).verdict).toBe('ok');
    expect(stateDirVerdict('/var/lib/pushfleet', { kind: 'directory', writable: false }).verdict).toBe('FAIL');
    expect(stateDirVerdict('/var/lib/pushfleet', { kind: 'not-directory' }).verdict).toBe('FAIL');
    expect(stateDirVerdict('/var/lib/pushfleet', { kind: 'missing', ancestor: '/var/lib', writable: true }).detail).toMatch(/creates it at its first start/);
    expect(stateDirVerdict('/var/lib/pushfleet', { kind: 'missing', ancestor: '/var/lib', writable: false }).verdict).toBe('FAIL');
    expect(portVerdict('http', 'http.port', '0.0.0.0:3000', { free: true })).toMatchObject({ check: 'http port', verdict: 'ok' });
    expect(portVerdict('http', 'http.port', '0.0.0.0:3000', { free: false, hubAnswers: true }).verdict).toBe('ok');
    expect(portVerdict('broker', 'broker.port', '127.0.0.1:1883', { free: false, hubAnswers: false }).detail).toBe('127.0.0.1:1883 is taken by another process: stop it or change broker.port');
    expect(portVerdict('http', 'http.port', '0.0.0.0:80', { error: 'EACCES' }).detail).toBe('cannot listen on 0.0.0.0:80 (EACCES): fix http.port');
  });
});
