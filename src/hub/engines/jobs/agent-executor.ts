import { AgentJobStatus, type JobStart } from '../../../shared/contract/jobs-messages.js';
import type { Logger } from '../../../shared/logger.js';
import { AgentStatus, decode, SCHEMA_VERSION } from '../../../shared/messages.js';
import { AGENT_JOB_STATUS_ALL, AGENT_STATUS_ALL, agentJobTopic } from '../../../shared/topics.js';
import { TopicPattern } from '../../../shared/contract/topic-pattern.js';
import type { Clock, Publisher } from '../engine.js';
import { chooseAgent } from './agent-choice.js';
import type { JobExecutor, JobRow, Run, RunUpdate } from './model.js';

export type AgentExecutorDeps = { publisher: Publisher; clock: Clock; log: Logger };
export type AgentExecutorSettings = { agentLostSeconds: number };

const STATUS = new TopicPattern('pushfleet/agents/{agent}/status');
const JOB_STATUS = new TopicPattern('pushfleet/agents/{agent}/jobs/{run}/status');
/** Job statuses kept for runs this hub does not track (yet): a bound, since they come from the network. */
const MAX_UNTRACKED = 10_000;
/** How long `stop` waits for the agent's last word beyond agentLostSeconds (its action's stopTimeout). */
const STOP_EXTRA_MS = 60_000;

type Tracked = {
  agent: string;
  /** A failure decided here (no agent, agent lost, no answer), in place of the agent's status. */
  failure?: { reason: string; at: number };
  timer?: unknown;
  listeners: Set<(update: RunUpdate) => void>;
  /** What each listener was told last, so every update is told once. */
  told: WeakMap<(update: RunUpdate) => void, string>;
};

/**
 * The `agent` executor: runs a row's action on a chosen agent of the fleet (agent/jobs/ on the
 * agent side). Starts and stops go out signed by the hub's publisher; the agents' retained
 * statuses (presence, offered actions, each run's state) come in through `handle`.
 */
export class AgentExecutor implements JobExecutor {
  readonly kind = 'agent' as const;
  readonly subscriptions = [AGENT_STATUS_ALL, AGENT_JOB_STATUS_ALL] as const;
  private readonly agents = new Map<string, AgentStatus>();
  /** Each run's last status from its agent. */
  private readonly statuses = new Map<string, { agent: string; status: AgentJobStatus }>();
  private readonly runs = new Map<string, Tracked>();
  private readonly lostMs: number;

  constructor(
    private readonly deps: AgentExecutorDeps,
    settings: AgentExecutorSettings,
  ) {
    this.lostMs = settings.agentLostSeconds * 1000;
  }

  handle(topic: string, payload: Buffer): void {
    const presence = STATUS.match(topic);
    if (presence) return this.onPresence(presence.agent!, payload);
    const job = JOB_STATUS.match(topic);
    if (!job || payload.length === 0) return; // a cleared status: ours, after remove
    const decoded = decode(AgentJobStatus, payload);
    if (!decoded.ok || decoded.value.run !== job.run) {
      this.deps.log.warn({ topic, error: decoded.ok ? 'run differs from the topic' : decoded.error }, 'ignored malformed agent job status');
      return;
    }
    const tracked = this.runs.get(job.run!);
    // Only the agent the run was given to speaks for it.
    if (tracked?.agent && tracked.agent !== job.agent) return void this.deps.log.warn({ topic, agent: tracked.agent }, 'ignored a job status from another agent');
    // An ended run stays as it ended (its output too): a later word from the agent changes nothing.
    if (this.ended(job.run!)) return;
    if (!tracked && this.statuses.size >= MAX_UNTRACKED) this.statuses.clear();
    this.statuses.set(job.run!, { agent: job.agent!, status: decoded.value });
    if (tracked) {
      tracked.agent = job.agent!;
      this.clearTimer(tracked);
      this.armLostTimer(job.run!, tracked);
      this.tell(job.run!);
    }
  }

  async start(run: Run, row: JobRow): Promise<void> {
    if (row.executor !== 'agent') throw new Error(`row ${row.jobName} is not an agent row`);
    // Started before (a hub restart): the agent that has its status, or the one recorded, keeps it.
    const agent = this.statuses.get(run.id)?.agent ?? run.agent ?? this.choose(run, row);
    if (agent === null) return;
    const tracked = this.track(run.id, agent);
    if (this.statuses.has(run.id)) return void this.tell(run.id);
    const start: JobStart = {
      v: SCHEMA_VERSION,
      run: run.id,
      job: run.job,
      name: run.name,
      action: row.action,
      topic: run.topic,
      payload: run.payload,
      params: Object.fromEntries(Object.entries(run.params).map(([k, v]) => [k.toUpperCase(), v])),
      timeoutSeconds: row.timeoutSeconds,
    };
    this.deps.log.info({ run: run.id, job: run.job, agent, action: row.action }, 'starting job run on agent');
    // The agent answers a start at once (running, or refused); silence means it never got it.
    this.clearTimer(tracked);
    tracked.timer = this.deps.clock.setTimeout(() => this.fail(run.id, this.online(agent) ? `agent ${agent} did not answer the start within ${this.lostMs / 1000} s` : `agent ${agent} went offline`), this.lostMs);
    await this.deps.publisher.publish(agentJobTopic(agent, run.id, 'start'), JSON.stringify(start), { qos: 1 });
  }

  watch(run: Run, onUpdate: (update: RunUpdate) => void): () => void {
    // Unknown agent (watched before its start): start names it.
    const tracked = this.track(run.id, run.agent ?? this.statuses.get(run.id)?.agent ?? '');
    tracked.listeners.add(onUpdate);
    this.armLostTimer(run.id, tracked);
    this.tell(run.id);
    return () => tracked.listeners.delete(onUpdate);
  }

  async stop(run: Run): Promise<void> {
    const tracked = this.runs.get(run.id);
    if (!tracked?.agent || this.ended(run.id)) return;
    await this.deps.publisher.publish(agentJobTopic(tracked.agent, run.id, 'stop'), JSON.stringify({ v: SCHEMA_VERSION, run: run.id }), { qos: 1 });
    await new Promise<void>((resolve) => {
      const done = () => {
        this.deps.clock.clearTimeout(limit);
        tracked.listeners.delete(listener);
        resolve();
      };
      const listener = (u: RunUpdate) => u.status !== 'running' && done();
      const limit = this.deps.clock.setTimeout(() => {
        this.fail(run.id, `agent ${tracked.agent} did not confirm the stop`);
        done();
      }, this.lostMs + STOP_EXTRA_MS);
      tracked.listeners.add(listener);
      tracked.told.set(listener, 'running');
    });
  }

  async logs(run: Run): Promise<string> {
    return this.statuses.get(run.id)?.status.output ?? '';
  }

  async remove(run: Run): Promise<void> {
    const agent = this.runs.get(run.id)?.agent ?? this.statuses.get(run.id)?.agent ?? run.agent;
    const tracked = this.runs.get(run.id);
    if (tracked) this.clearTimer(tracked);
    this.runs.delete(run.id);
    this.statuses.delete(run.id);
    // The hub clears the agent's retained status once it recorded the end.
    if (agent !== undefined) await this.deps.publisher.publish(agentJobTopic(agent, run.id, 'status'), '', { qos: 1, retain: true });
  }

  private choose(run: Run, row: Extract<JobRow, { executor: 'agent' }>): string | null {
    const busy = (agent: string) => [...this.runs.entries()].filter(([id, t]) => t.agent === agent && !this.ended(id)).length;
    const choice = chooseAgent(this.agents.values(), row, busy);
    if ('agent' in choice) return choice.agent;
    this.deps.log.warn({ run: run.id, job: run.job, reason: choice.none }, 'job run has no agent');
    // Kept under no agent: watch reports the failure at once.
    this.track(run.id, '').failure = { reason: choice.none, at: this.deps.clock.now() };
    return null;
  }

  private track(run: string, agent: string): Tracked {
    let tracked = this.runs.get(run);
    if (!tracked) {
      tracked = { agent, listeners: new Set(), told: new WeakMap() };
      this.runs.set(run, tracked);
    }
    if (!tracked.agent) tracked.agent = agent;
    return tracked;
  }

  private onPresence(agent: string, payload: Buffer): void {
    if (payload.length === 0) this.agents.delete(agent);
    else {
      const status = decode(AgentStatus, payload);
      if (!status.ok || status.value.agent !== agent) return void this.deps.log.warn({ agent, error: status.ok ? 'agent differs from the topic' : status.error }, 'ignored malformed agent status');
      this.agents.set(agent, status.value);
    }
    for (const [run, tracked] of this.runs) if (tracked.agent === agent) this.armLostTimer(run, tracked);
  }

  private online(agent: string): boolean {
    return this.agents.get(agent)?.state === 'online';
  }

  /** A run under way on an agent that is not online fails once it stayed away agentLostSeconds; its return cancels that. */
  private armLostTimer(run: string, tracked: Tracked): void {
    // Before the first answer the start's timer runs.
    if (!tracked.agent || this.ended(run) || !this.statuses.has(run)) return;
    this.clearTimer(tracked);
    if (!this.online(tracked.agent)) tracked.timer = this.deps.clock.setTimeout(() => this.fail(run, `agent ${tracked.agent} went offline`), this.lostMs);
  }

  private clearTimer(tracked: Tracked): void {
    if (tracked.timer !== undefined) this.deps.clock.clearTimeout(tracked.timer);
    tracked.timer = undefined;
  }

  private fail(run: string, reason: string): void {
    const tracked = this.runs.get(run);
    if (!tracked || this.ended(run)) return;
    this.deps.log.warn({ run, agent: tracked.agent, reason }, 'job run failed on the hub side');
    tracked.failure = { reason, at: this.deps.clock.now() };
    this.clearTimer(tracked);
    this.tell(run);
    // Best effort: an agent that comes back should not go on with a run the hub gave up.
    if (tracked.agent) this.deps.publisher.publish(agentJobTopic(tracked.agent, run, 'stop'), JSON.stringify({ v: SCHEMA_VERSION, run }), { qos: 1 }).catch(() => undefined);
  }

  private ended(run: string): boolean {
    const update = this.current(run);
    return update !== undefined && update.status !== 'running';
  }

  private current(run: string): RunUpdate | undefined {
    const tracked = this.runs.get(run);
    if (tracked?.failure) return { status: 'failed', at: tracked.failure.at, reason: tracked.failure.reason };
    const known = this.statuses.get(run);
    if (!known) return undefined;
    const { status, agent } = known;
    const at = Date.parse(status.at);
    if (status.state === 'running') return { status: 'running', at, agent };
    return { status: status.state, at, reason: status.reason ?? (status.state === 'succeeded' ? `succeeded on agent ${agent}` : `failed on agent ${agent}`) };
  }

  private tell(run: string): void {
    const tracked = this.runs.get(run);
    const update = this.current(run);
    if (!tracked || !update) return;
    for (const listener of [...tracked.listeners]) {
      if (tracked.told.get(listener) === update.status) continue;
      // Once ended, a run stays ended for its listeners (a late agent status changes nothing).
      if (tracked.told.has(listener) && tracked.told.get(listener) !== 'running') continue;
      tracked.told.set(listener, update.status);
      listener(update);
    }
  }
}
