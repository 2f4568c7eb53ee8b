import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

export type PostgresServer = {
  port: number;
  /** Superuser `postgres` with a generated password, over TCP. */
  url(database?: string): string;
  /** A new, empty database; returns its URL. */
  database(): Promise<string>;
  /** SIGKILL to the postmaster, waiting until it is gone (its backends follow it). */
  kill(): Promise<void>;
  /** SIGSTOP to the postmaster and every backend: connections stay open and nothing answers (a stalled server). */
  pause(): void;
  /** SIGCONT after `pause`. */
  resume(): void;
  /** Starts it again on the same port and data after `kill`. */
  restart(): Promise<void>;
  stop(): Promise<void>;
};

/** Debian installs each major version under /usr/lib/postgresql/<major>/bin; the newest is taken. */
function binDir(): string {
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root) ? readdirSync(root).filter((v) => existsSync(`${root}/${v}/bin/postgres`)) : [];
  if (majors.length === 0) throw new Error('PostgreSQL is not installed (apt-get install postgresql); .ci/install-deps installs it');
  return `${root}/${majors.sort((a, b) => Number(a) - Number(b)).at(-1)}/bin`;
}

/** PostgreSQL refuses to run as root: then it runs as the `postgres` user the Debian package made. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

/**
 * A PostgreSQL server of this test run's own: a temp data dir, a free loopback port, its unix
 * socket in the temp dir, password auth over TCP. `stop` removes the process and the dir.
 */
export async function startPostgres(): Promise<PostgresServer> {
  const bin = binDir();
  const user = runAs();
  const dir = mkdtempSync(join(tmpdir(), 'pushfleet-postgres-'));
  const data = join(dir, 'data');
  const password = randomBytes(12).toString('hex');
  writeFileSync(join(dir, 'pwfile'), password);
  if (user) chownSync(dir, user.uid, user.gid);
  const as = user ? { uid: user.uid, gid: user.gid } : {};
  const env = { ...process.env, LC_ALL: 'C', TZ: 'UTC' };
  // --no-sync: a test cluster need not survive a power cut; the server itself keeps fsync on.
  execFileSync(`${bin}/initdb`, ['-D', data, '-U', 'postgres', '--pwfile', join(dir, 'pwfile'), '--auth-host=scram-sha-256', '--auth-local=trust', '-E', 'UTF8', '--no-sync', '--no-instructions'], { ...as, env, stdio: 'pipe', cwd: dir });
  const port = await freePort();
  let child: ChildProcess | undefined;
  let stderr = '';
  const url = (database = 'postgres') => `postgres://postgres:${password}@127.0.0.1:${port}/${database}`;

  const launch = () => {
    stderr = '';
    const proc = spawn(`${bin}/postgres`, ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=50'], { ...as, env, cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    proc.stderr!.on('data', (d) => (stderr += d));
    return (child = proc);
  };
  // After a kill -9 the old backends hold the shared memory for a moment: a start refused for that is tried again.
  const start = async () => {
    let proc = launch();
    await waitFor(
      () => `postgres on port ${port} (${stderr.slice(-500)})`,
      async () => {
        if (proc.exitCode !== null) {
          proc = launch();
          return false;
        }
        return answers(url());
      },
      30_000,
    );
  };
  const exited = (proc: ChildProcess) => (proc.exitCode !== null || proc.signalCode !== null ? Promise.resolve() : new Promise<void>((resolve) => proc.once('exit', () => resolve())));

  await start();
  let made = 0;
  return {
    port,
    url,
    async database() {
      const name = `t${++made}_${randomBytes(3).toString('hex')}`;
      const admin = new pg.Client({ connectionString: url() });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      return url(name);
    },
    async kill() {
      const proc = child!;
      proc.kill('SIGKILL');
      await exited(proc);
    },
    pause() {
      signalCluster(child!.pid!, 'SIGSTOP');
    },
    resume() {
      signalCluster(child!.pid!, 'SIGCONT');
    },
    restart: start,
    async stop() {
      const proc = child;
      if (proc && proc.exitCode === null && proc.signalCode === null) {
        signalCluster(proc.pid!, 'SIGCONT');
        // SIGINT is the fast shutdown: clients still connected are cut off rather than waited for.
        proc.kill('SIGINT');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
        await exited(proc);
        clearTimeout(timer);
      }
      // Whatever postmaster still holds this data dir (one started by a retried launch) goes too.
      const left = postmasterOf(data);
      if (left !== undefined) {
        process.kill(left, 'SIGKILL');
        await waitFor('the leftover postmaster to exit', () => !alive(left), 10_000);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Signals the postmaster and its backends (its children); one that has just exited is skipped. */
function signalCluster(postmaster: number, signal: NodeJS.Signals): void {
  let children: number[] = [];
  try {
    children = execFileSync('ps', ['-o', 'pid=', '--ppid', String(postmaster)], { encoding: 'utf8' }).split('\n').filter((l) => l.trim() !== '').map(Number);
  } catch {
    // ps exits 1 when there are none.
  }
  for (const pid of [postmaster, ...children]) {
    try {
      process.kill(pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
}

/** The live postmaster of `data`, from its pid file, if any. */
function postmasterOf(data: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n', 1)[0]);
    return alive(pid) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(data) ? pid : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
