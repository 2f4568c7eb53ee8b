import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/shared/logger.js';
import { notifyTarget, serviceManager } from '../../src/shared/sd-notify.js';
import { StartupError } from '../../src/shared/startup.js';

describe('notifyTarget (the environment systemd sets for Type=notify)', () => {
  it('is nothing outside systemd', () => {
    expect(notifyTarget({}, 42)).toBeUndefined();
    expect(notifyTarget({ NOTIFY_SOCKET: '', WATCHDOG_USEC: '30000000' }, 42)).toBeUndefined();
  });

  it('pings at half the watchdog timeout, only when the watchdog is meant for this PID', () => {
    expect(notifyTarget({ NOTIFY_SOCKET: '/run/systemd/notify' }, 42)).toEqual({ socket: '/run/systemd/notify', watchdogMs: undefined });
    expect(notifyTarget({ NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '30000000' }, 42)?.watchdogMs).toBe(15_000);
    expect(notifyTarget({ NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, 42)?.watchdogMs).toBe(15_000);
    expect(notifyTarget({ NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '7' }, 42)?.watchdogMs).toBeUndefined();
    expect(notifyTarget({ NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: 'soon' }, 42)?.watchdogMs).toBeUndefined();
  });

  it('refuses a socket it cannot reach with one line and exit code 2, rather than never sending READY=1', () => {
    for (const socket of ['@/org/freedesktop/systemd1/notify', 'vsock:2:1234']) {
      let error: unknown;
      try {
        notifyTarget({ NOTIFY_SOCKET: socket }, 42);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(StartupError);
      expect((error as StartupError).exitCode).toBe(2);
      expect((error as StartupError).message).toContain(`NOTIFY_SOCKET=${socket} is`);
    }
  });
});

describe('serviceManager', () => {
  it('takes the variables out of the environment, so commands the service runs do not notify its unit', () => {
    const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: '/nonexistent/notify', WATCHDOG_USEC: '1000000', WATCHDOG_PID: '42', PATH: '/usr/bin' };
    const manager = serviceManager(createLogger('test', 'silent'), env, 42);
    expect(env).toEqual({ PATH: '/usr/bin' });
    // A socket nobody listens on: sending is logged, never thrown.
    expect(() => manager.status('starting')).not.toThrow();
  });
});
