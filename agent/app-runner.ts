import { randomUUID } from 'node:crypto';
import type { Logger } from '../src/shared/logger.js';
import type { AppState } from '../src/shared/messages.js';
import type { Lease } from '../src/semaphore-client/client.js';
import { describeApp, type RunnerView } from './app-state.js';
import { backoffMs, type BackoffPolicy } from './backoff.js';
import type { AppConfig } from './config.js';
import { DesiredTarget } from './desired-target.js';
import type { Journal, Target } from './journal.js';
import type { JournalStore } from './journal-file.js';
import { grantLost, held, record, retryNow, type RecordContext, type StepResult } from './journal-transitions.js';
import type { AdmitOptions } from './rollout-gate.js';
import type { Executors } from './step-executors.js';
import { describeGroup } from './process-group.js';
import { asStepError } from './step-error.js';
import { CommitRefused } from './commit-verifier.js';
import { plan, shapeOf, type Shape, type Step, type WorkStep } from './update-plan.js';

/** The rollout admission (agent/rollout-gate.ts): a lease once granted, else why not. */
export type Gate = {
  admit(app: string, sha: string, opts: AdmitOptions): Promise<Lease | { refused: string }>;
  settle(app: string, sha: string, finished: boolean): Promise<void>;
};

const HELD = 'cannot write the journal of accepted signatures: ';

export type Clock = { now(): number; random(): number; sleep(ms: number, signal: AbortSignal): Promise<void> };

export type RunnerDeps = {
  app: AppConfig;
  agentId: string;
  log: Logger;
  journal: Journal;
  store: JournalStore;
  executors: Executors;
  gate: Gate | null;
  publish(state: AppState): void;
  clock: Clock;
  /** The app's spare gates (agent/spare-process.ts), killed once the runner stopped. */
  spares?: { close(): void };
};

/** The journal could not be written: nothing that depends on it may go on. */
class JournalWriteError extends Error {}

const short = (sha: string | null | undefined) => (sha ? sha.slice(0, 12) : 'nothing');

/**
 * One configured app: a reconcile loop from what the app should run (DesiredTarget) and what it
 * runs (the journal) to the steps between them (plan), each performed by its executor and
 * recorded in the journal before the next. One loop per app, so its updates never overlap; a wait
 * (for a rollout grant or a retry) is cut short when the target changes.
 */
export class AppRunner {
  private journal: Journal;
  private readonly desired = new DesiredTarget();
  private readonly shape: Shape;
  private readonly backoff: BackoffPolicy;
  private view: RunnerView = { admitting: null, pinnedSha: null, journalError: null, refusedHead: null, retryRequest: null };
  private grant: { target: Target; lease: Lease } | null = null;
  /** Aborted to cut the current wait short: a new target, a retry request, the agent stopping. */
  private wake = new AbortController();
  /** Aborted once, by stop. */
  private readonly halt = new AbortController();
  private running: Promise<void> | null = null;
  private stopping = false;
  private retryNowRequested = false;
  /** A change not planned for yet. */
  private dirty = false;
  private journalFailures = 0;

  constructor(private readonly deps: RunnerDeps) {
    this.journal = deps.journal;
    this.shape = shapeOf(deps.app);
    this.backoff = { initialMs: deps.app.retryDelay * 1000, maxMs: deps.app.retryMaxDelay * 1000 };
  }

  get app(): AppConfig {
    return this.deps.app;
  }

  get current(): AppState {
    return describeApp(this.deps.app, this.deps.agentId, this.shape, this.journal, this.view, this.deps.clock.now());
  }

  get pinnedSha(): string | null {
    return this.desired.pinnedSha;
  }

  /** The target for a SHA the hub sent itself (pin, rollback), on the ref the app runs. */
  directTarget(sha: string, deliveryId: string, receivedAt: string): Target {
    const ref = this.journal.active?.target.ref ?? this.journal.deployed?.ref ?? this.journal.last?.target.ref ?? 'refs/heads/pinned';
    return { sha, ref, deliveryId, receivedAt, direct: true, key: deliveryId };
  }

  /** Starts the loop: an update the previous run left unfinished goes on at once. */
  start(): void {
    this.poke();
  }

  /** A head or a rollback directive; returns whether it became the newest target. */
  offer(target: Target): boolean {
    const taken = this.desired.offer(target);
    if (taken) this.poke();
    return taken;
  }

  /** Pinned by the hub (a direct target) or unpinned (null: the caller offers the heads again). */
  pin(target: Target | null): void {
    this.desired.pin(target);
    this.view = { ...this.view, pinnedSha: target?.sha ?? null };
    this.publish();
    this.poke();
  }

  /** A retained head for this app was refused (wrong topic, dated in the future). */
  refused(refusal: NonNullable<AppState['refusedHead']>): void {
    this.view = { ...this.view, refusedHead: refusal };
    this.publish();
  }

  /**
   * A signed message for this app is held: the agent cannot record its sequence in the state dir
   * (full, say), so it is not acted on yet. Shown as the journal error it is; null once it passed.
   */
  held(problem: string | null): void {
    const shown = this.view.journalError?.message.startsWith(HELD) === true;
    if (problem === null && !shown) return;
    this.view = { ...this.view, journalError: problem === null ? null : { step: 'fetch', message: `${HELD}${problem}`, outputTail: '' } };
    this.publish();
  }

  /** `pushfleet retry`: try the last failed update again, or a transient failure's next try now. */
  retry(requestId: string): void {
    const j = this.journal;
    const target = this.desired.current;
    let detail: string;
    let accepted = true;
    if (j.active && j.active.retryAt !== null) {
      this.retryNowRequested = true;
      detail = `trying ${short(j.active.target.sha)} again now (attempt ${j.active.attempt})`;
    } else if (j.active || this.view.admitting) {
      accepted = false;
      detail = `nothing to retry: an update to ${short((j.active?.target ?? this.view.admitting)!.sha)} is under way`;
    } else if (target && j.last && j.last.state !== 'deployed' && target.key === j.last.target.key) {
      this.desired.rekey(`retry:${requestId}`);
      detail = `trying ${short(target.sha)} again (it ended ${j.last.state}${j.last.error ? ` at ${j.last.error.step}` : ''})`;
    } else {
      accepted = false;
      detail = j.deployed ? `nothing to retry: ${short(j.deployed.sha)} is deployed and nothing newer failed` : 'nothing to retry: no update has failed';
    }
    this.deps.log.info({ request: requestId, accepted, detail }, 'retry requested');
    this.view = { ...this.view, retryRequest: { id: requestId, accepted, detail, at: new Date(this.deps.clock.now()).toISOString() } };
    this.publish();
    if (accepted) this.poke();
  }

  /** Resolves when no step is running or due. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /**
   * Lets an update under way finish (a half-applied update is worse than a slower stop), but
   * starts none and gives up waits for a grant or a retry. A grant the journal still records
   * is kept for the restart to take back (the rollout counts the host as updating meanwhile).
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.halt.abort();
    this.wake.abort();
    await this.idle();
    this.deps.spares?.close();
    const grant = this.grant;
    this.grant = null;
    if (grant && this.journal.admission?.token !== grant.lease.token) await grant.lease.abort().catch(() => undefined);
  }

  private publish(): void {
    this.deps.publish(this.current);
  }

  /** Something changed: cut the current wait short and plan again (starting the loop if it is not running). */
  private poke(): void {
    this.wake.abort();
    this.dirty = true;
    if (this.stopping || this.running) return;
    this.running = this.loop()
      .catch((err: unknown) => this.deps.log.error({ err }, 'app loop failed'))
      .finally(() => {
        this.running = null;
        // A change that came after the loop's last plan but before it ended.
        if (this.dirty) this.poke();
      });
  }

  private async loop(): Promise<void> {
    for (;;) {
      // A new controller before planning: any change from here on cuts the next wait short.
      this.wake = new AbortController();
      this.dirty = false;
      const step = plan({
        journal: this.journal,
        target: this.desired.current,
        granted: this.grant?.target ?? null,
        needsGrant: (t) => this.deps.gate !== null && this.deps.app.rollout && !t.direct,
        shape: this.shape,
        now: this.deps.clock.now(),
      })[0];
      if (!step || (this.stopping && (!this.journal.active || step.kind === 'wait' || step.kind === 'admit'))) return;
      try {
        const now = this.retryNowRequested && step.kind === 'wait';
        this.retryNowRequested = false;
        await (now ? this.commit(retryNow(this.journal)) : this.perform(step, this.wake.signal));
        this.journalFailures = 0;
      } catch (err) {
        if (!(err instanceof JournalWriteError)) throw err;
        if (this.stopping) return;
        await this.journalTrouble(err, step);
      }
    }
  }

  private async perform(step: Step, wake: AbortSignal): Promise<void> {
    const { clock, log } = this.deps;
    switch (step.kind) {
      case 'admit':
        return this.admit(step.target, step.token, wake);
      case 'settle':
        return this.settle(this.deps.gate!.settle(this.deps.app.name, step.target.sha, step.finished));
      case 'wait':
        return clock.sleep(step.until - clock.now(), wake);
      case 'begin':
        log.info({ sha: step.target.sha, ref: step.target.ref, from: step.previousSha, delivery: step.target.deliveryId }, 'update started');
        return this.stage(record(this.journal, step, { ok: true, ms: 0 }, this.recordContext()));
      case 'abandon':
        log.info({ sha: this.journal.active?.target.sha, reason: step.reason }, 'update abandoned');
        return this.commit(record(this.journal, step, { ok: true, ms: 0 }, this.recordContext()));
      default:
        return this.work(step);
    }
  }

  private async work(step: WorkStep): Promise<void> {
    const { clock } = this.deps;
    const exec = this.deps.executors[step.kind];
    // sha: what the step works on (in a rollback, the SHA it restores); phase tells a rollback's lines from the update's.
    const log = this.deps.log.child({ sha: step.sha, step: step.kind, phase: this.journal.active?.phase ?? 'forward' });
    const started = clock.now();
    let result: StepResult;
    // Each process of the step is in the journal before it runs, so a restarted agent can stop it.
    const track = (pid: number, argv0: string) => this.commit({ ...this.journal, running: describeGroup(pid, step.kind, argv0) }, false);
    try {
      await exec.run(step, { log, timeoutMs: exec.timeoutMs, track });
      result = { ok: true, ms: clock.now() - started };
    } catch (err) {
      if (err instanceof JournalWriteError) throw err;
      const e = asStepError(step.kind, err);
      const error = { step: e.step, message: e.message, outputTail: e.outputTail };
      const refused = e instanceof CommitRefused ? e.refusal : undefined;
      result = { ok: false, ms: clock.now() - started, error, transient: exec.retry === 'backoff' && !e.permanent, ...(refused && { refused }) };
      log.warn({ err: e.message, transient: result.transient }, refused ? 'commit refused' : 'step failed');
    }
    const next = { ...record(this.journal, step, result, this.recordContext()), running: null };
    // The next step of the same phase follows at once: its first process's record writes this one too.
    if (result.ok && next.active) return this.stage(next);
    await this.commit(next);
    if (!this.journal.active) await this.finished();
  }

  /**
   * Waits for the rollout's grant, with the registration's token journaled before it is sent
   * (`token` given: a restart takes that registration back). A newer target or a stop withdraws a
   * new update's registration, the journal forgetting it first, so a restart never asks for a
   * registration its own run withdrew; an unfinished update's is kept for the restart instead.
   */
  private async admit(target: Target, journaled: string | null, wake: AbortSignal): Promise<void> {
    const { log, clock } = this.deps;
    const token = journaled ?? randomUUID();
    // The admission commits below publish nothing by themselves: the state they leave is published once, after.
    if (!journaled) await this.commit({ ...this.journal, admission: { target, token } }, false);
    const forActive = this.journal.active?.target.key === target.key;
    log.info({ sha: target.sha, delivery: target.deliveryId, again: journaled !== null }, journaled ? 'taking back the rollout registration' : 'update waits for its rollout grant');
    this.view = { ...this.view, admitting: target };
    this.publish();
    const withdraw = new AbortController();
    const detach = new AbortController();
    let forgetting: Promise<void> | undefined;
    const cut = () => {
      if (forActive) return detach.abort();
      forgetting = this.commit({ ...this.journal, admission: null }, false)
        .catch((err: Error) => log.warn({ err: err.message }, 'rollout registration withdrawn but still in the journal'))
        .finally(() => withdraw.abort());
    };
    const cutBy = forActive ? this.halt.signal : wake;
    cutBy.addEventListener('abort', cut, { once: true });
    if (cutBy.aborted) cut();
    let got: Lease | { refused: string };
    try {
      got = await this.deps.gate!.admit(this.deps.app.name, target.sha, { token, resume: journaled !== null, withdraw: withdraw.signal, detach: detach.signal });
    } finally {
      cutBy.removeEventListener('abort', cut);
      this.view = { ...this.view, admitting: null };
    }
    await forgetting;
    if ('uid' in got) {
      this.grant = { target, lease: got };
      // Granted while the withdrawal was being journaled: the journal holds it again.
      if (this.journal.admission?.token !== token) await this.commit({ ...this.journal, admission: { target, token } }, false);
      return this.publish();
    }
    // Cut short for a newer target or a stop: nothing to record, the next plan says what is next.
    if (withdraw.signal.aborted || detach.signal.aborted) return this.publish();
    if (forActive) {
      log.warn({ sha: target.sha, reason: got.refused }, 'the rollout grant of the interrupted update is gone');
      return this.commit(grantLost(this.journal, got.refused, this.shape, clock.now()));
    }
    log.info({ sha: target.sha }, 'update held');
    await this.commit(held(this.journal, target, clock.now()));
  }

  /** Logs the outcome and gives the rollout slot back, after the state that says how it went. */
  private async finished(): Promise<void> {
    const last = this.journal.last!;
    const fields = { sha: this.journal.deployed?.sha ?? null, targetSha: last.target.sha, state: last.state, durations: last.durations, error: last.error, interrupted: last.interrupted };
    if (last.state === 'deployed') this.deps.log.info(fields, 'update deployed');
    else this.deps.log.error(fields, `update ${last.state}`);
    const grant = this.grant;
    this.grant = null;
    if (grant) await this.settle(last.state === 'deployed' ? grant.lease.release() : grant.lease.abort());
  }

  /**
   * Forgets the admission once the hub has the slot back. Not awaited past a stop (the broker may
   * be away): the journal still holds it, and the next run gives it back.
   */
  private async settle(given: Promise<void>): Promise<void> {
    const halt = this.halt.signal;
    let onHalt = () => {};
    const halted = new Promise<'halted'>((resolve) => {
      onHalt = () => resolve('halted');
      if (halt.aborted) onHalt();
      else halt.addEventListener('abort', onHalt, { once: true });
    });
    const outcome = await Promise.race([given.then(() => 'given' as const), halted])
      .catch((err: Error) => {
        // Gone for good (the client closed): trying again would fail the same way.
        this.deps.log.warn({ err: err.message }, 'rollout slot not returned');
        return 'failed' as const;
      })
      .finally(() => halt.removeEventListener('abort', onHalt));
    // Quietly: the app's state is unchanged, and each state message is a cue for the hub (it may resend a rollback).
    if (outcome !== 'halted') await this.commit({ ...this.journal, admission: null }, false);
  }

  private recordContext(): RecordContext {
    const { clock } = this.deps;
    return { now: clock.now(), shape: this.shape, retryDelayMs: (failures) => backoffMs(failures, this.backoff, clock.random) };
  }

  /**
   * Durable first: the journal is written before anything it describes happens, or nothing
   * happens. `publish: false` for a change the app's state does not show (a journal error cleared is shown all the same).
   */
  private async commit(next: Journal, publish = true): Promise<void> {
    try {
      await this.deps.store.save(next);
    } catch (err) {
      throw new JournalWriteError((err as Error).message);
    }
    this.journal = next;
    const hadError = this.view.journalError !== null;
    this.view = { ...this.view, journalError: null };
    if (publish || hadError) this.publish();
  }

  /**
   * An update's begin, or a step's successful end with the next step of its phase to come: kept
   * in memory and shown, and written with the next step's first process record (`track`), one
   * fsync where there were two. Still durable before it matters: the working copy and the app are
   * changed only by processes, each recorded (with what is staged) before it runs. A kill in
   * between finds the previous record: the update was begun but had run nothing, or the step whose
   * end is lost had ended with nothing after it run; either way the restart redoes the phase from
   * its first step (recover), as it would from the staged record. Only a step's end is staged,
   * never an outcome, a retry's time or an admission, so the loop never ends or waits with a
   * record unwritten.
   */
  private stage(next: Journal): void {
    this.journal = next;
    this.publish();
  }

  /** The journal cannot be written (a full disk, say): report it and try again with backoff. */
  private async journalTrouble(err: JournalWriteError, step: Step): Promise<void> {
    const { clock, log } = this.deps;
    this.journalFailures++;
    const stepName = 'index' in step ? step.kind : 'fetch';
    log.error({ err: err.message, failures: this.journalFailures }, 'cannot write the journal; the update waits');
    this.view = { ...this.view, journalError: { step: stepName, message: `cannot write the journal: ${err.message}`, outputTail: '' } };
    this.publish();
    await clock.sleep(backoffMs(this.journalFailures, this.backoff, clock.random), this.wake.signal);
  }
}
