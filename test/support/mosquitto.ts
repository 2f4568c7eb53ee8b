import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acceptsConnections, freePort } from './ports.js';
import { waitFor } from './wait.js';

export type ExternalBroker = {
  url: string;
  port: number;
  stop(): Promise<void>;
  /** SIGSTOP: the process holds its sockets open but reads and answers nothing (a stalled broker). */
  pause(): void;
  /** SIGCONT after `pause`. */
  resume(): void;
};

function mosquittoBinary(): string {
  const found = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/sbin/mosquitto'].find(existsSync);
  if (!found) throw new Error('mosquitto is not installed (apt-get install mosquitto); .ci/run installs it');
  return found;
}

/** A real mosquitto process on a free loopback port, with its own config in a temp dir. */
export async function startMosquitto(): Promise<ExternalBroker> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'pushfleet-mosquitto-'));
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\npersistence false\nlog_dest stderr\nlog_type error\n`);
  const child = spawn(mosquittoBinary(), ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitFor(`mosquitto on port ${port} (${stderr})`, async () => child.exitCode === null && (await acceptsConnections(port)), 10_000);
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    pause() {
      child.kill('SIGSTOP');
    },
    resume() {
      child.kill('SIGCONT');
    },
    async stop() {
      // A stopped process does not act on SIGTERM until continued.
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGCONT');
        child.kill('SIGTERM');
      }
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
