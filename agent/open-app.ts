import { join } from 'node:path';
import type { Logger } from '../src/shared/logger.js';
import type { AppState } from '../src/shared/messages.js';
import { AppRunner, type Clock, type Gate } from './app-runner.js';
import type { AppConfig } from './config.js';
import { GitWorkdir } from './git-workdir.js';
import { emptyJournal, type Journal } from './journal.js';
import { JournalFile } from './journal-file.js';
import { recover } from './journal-transitions.js';
import { stopLeftover } from './process-group.js';
import { appExecutors } from './step-executors.js';
import { shapeOf } from './update-plan.js';
import { CommitVerifier } from './commit-verifier.js';
import type { SpareProcesses } from './spare-process.js';

/** Real time; a sleep ends early (never rejects) when its signal fires. */
export const SYSTEM_CLOCK: Clock = {
  now: Date.now,
  random: Math.random,
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(ms, 0));
      signal.addEventListener('abort', done, { once: true });
    }),
};

/** The interrupted report names what the stopped run left running and that it was stopped. */
function withLeftover(j: Journal, leftover: string): { journal: Journal; note: string } {
  const interrupted = j.active?.interrupted;
  const journal = j.active && interrupted ? { ...j, active: { ...j.active, interrupted: { ...interrupted, leftover } } } : j;
  return { journal, note: leftover };
}

/**
 * An app's runner as the previous run left it: its journal from the state dir, recovered (an
 * unfinished update redone or rolled back), and checked against the working copy's HEAD. Without
 * a journal nothing counts as deployed: the working copy's HEAD is only where a first update
 * would roll back to.
 */
export async function openApp(app: AppConfig, agentId: string, stateDir: string, log: Logger, publish: (s: AppState) => void, gate: Gate | null, spares?: SpareProcesses): Promise<AppRunner> {
  const appLog = log.child({ app: app.name });
  const workdir = new GitWorkdir(app.path, app.remote, spares);
  const verifier = app.verify ? new CommitVerifier(app.path, app.verify, join(stateDir, 'verify', app.name)) : null;
  const file = new JournalFile(stateDir, app.name);
  const head = await workdir.head();
  const loaded = await file.load();
  if (loaded.problem) appLog.error({ journal: file.path, problem: loaded.problem }, 'journal unreadable: treating the app as never deployed');
  const stored = loaded.journal && loaded.journal.path === app.path ? loaded.journal : null;
  if (loaded.journal && !stored) appLog.warn({ journal: file.path, was: loaded.journal.path }, 'journal is for another path: starting afresh');
  // A step the killed run started may still be running: it must be gone before anything else runs.
  const leftover = stored?.running ? await stopLeftover(stored.running, appLog) : null;
  const shape = shapeOf(app);
  const recovered = stored ? recover({ ...stored, running: null }, head, app.onInterrupted, shape, Date.now()) : { journal: emptyJournal(app.name, app.path, head), note: null };
  const { journal, note } = leftover ? withLeftover(recovered.journal, leftover) : recovered;
  if (note || stored?.running) {
    if (note) appLog.warn({ journal: file.path, head }, note);
    await file.save(journal);
  }
  return new AppRunner({ app, agentId, log: appLog, journal, store: file, executors: appExecutors(app, agentId, workdir, verifier, spares), gate, publish, clock: SYSTEM_CLOCK });
}
