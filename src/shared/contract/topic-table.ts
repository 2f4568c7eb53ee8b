import { AgentDirective, RetryRequest, RolloutControl } from './rollout-messages.js';
import { AgentStatus, AppState, Heartbeat, HubStatus, PushMessage, type Decoded } from '../messages.js';
import { decodeSemConcurrency, decodeSemUid, SemRegister } from './semaphore-messages.js';
import { NodeCommand, NodeInfo, NodeResult, RunCancel, RunRequest, TimeReply, TimeRequest } from './orchestrator-messages.js';
import { NotifyRequest } from './notify-messages.js';
import { agentJobTopicSpecs } from './jobs-messages.js';
import { ROLLOUT_CHANNEL_PREFIX, SEED_DEFAULT_ROOT, SEM_DEFAULT_PREFIX } from '../topics.js';
import type { Role } from './roles.js';
import { TopicPattern, type Params } from './topic-pattern.js';
import { jobsTopics } from './jobs-topics.js';
import { servicesTopics } from './services-topics.js';
import { anything, json, orEmpty, topicSpec } from './topic-spec.js';
import { JOBS_DEFAULT_PREFIX } from './jobs-engine-messages.js';
import { topicMatches } from '../topic-match.js';

/**
 * One permission: a role, optionally only where a topic level equals the client's own name
 * (`own`: its agent id, or a job uid it registered under its name) or only on some semaphore
 * channels. The hub may always publish and read everything; it is not listed.
 */
export type Rule = {
  readonly role: Exclude<Role, 'hub'>;
  readonly own?: string;
  readonly channel?: 'rollout' | 'other';
};

/** Checks a payload's shape at the broker's door; `decode` of the receiving side still applies. */
export type PayloadCheck = (raw: Buffer) => Decoded<unknown>;

export type TopicSpec = {
  /** Stable name, used in logs, errors and the generated ACL file's comments. */
  readonly name: string;
  readonly pattern: TopicPattern;
  readonly about: string;
  readonly payload: PayloadCheck;
  readonly publish: readonly Rule[];
  readonly subscribe: readonly Rule[];
  /** Carries the hub's signature (src/shared/signing/): makes an agent act. */
  readonly signed: boolean | ((params: Params) => boolean);
  readonly retained: boolean;
  /**
   * On a retained signed topic, an empty payload clears it and is taken unsigned, since it can
   * only make an agent forget something (a deleted branch's head, a go that ended). Where clearing
   * moves an agent (unpinning), the clear is signed too.
   */
  readonly clearMovesAgent?: boolean;
  /**
   * A signed topic whose own protocol refuses a replay from before the agent's start (the services
   * lease echoes a session drawn at each start): the agent remembers its last sequence in memory
   * only, so the message (every renewMs) costs no fsync.
   */
  readonly replaySafe?: boolean;
};

export type ContractOptions = {
  /** engines.semaphore.prefix (served with and without a leading "/"). */
  semaphorePrefix?: string;
  /** The seed orchestrator's topic root (agents' orchestrator.root). */
  seedRoot?: string;
  /** engines.jobs.prefix */
  jobsPrefix?: string;
};

const empty: PayloadCheck = (raw) => (raw.length === 0 ? { ok: true, value: null } : { ok: false, error: 'expected an empty payload' });

const operator: Rule = { role: 'operator' };
const client: Rule = { role: 'client' };
const agent: Rule = { role: 'agent' };
const ownAgent: Rule = { role: 'agent', own: 'agent' };
const everyone: readonly Rule[] = [operator, agent, client];
const NOBODY: readonly Rule[] = [];

export const isRolloutChannel = (channel: string): boolean => channel.startsWith(ROLLOUT_CHANNEL_PREFIX);

/**
 * Every topic pushfleet uses: its pattern, payload, who may publish and read it, and whether it is
 * signed. Topics outside this table may be published by the hub only, and read by operators.
 */
export function topicTable(opts: ContractOptions = {}): readonly TopicSpec[] {
  const seed = opts.seedRoot ?? SEED_DEFAULT_ROOT;
  const sem = opts.semaphorePrefix ?? SEM_DEFAULT_PREFIX;
  const spec = topicSpec;
  const semaphore = (route: string): TopicSpec[] => {
    const at = (action: string) => `${route}/{channel}/${action}`;
    // Agents take part in rollouts only, clients in their own channels; rollout limits are the hub's,
    // and so are rollout jobs: an operator ending a host's job would free its slot mid-update
    // (operators steer rollouts through pushfleet/rollouts/control).
    const jobs: Rule[] = [{ role: 'operator', channel: 'other' }, { role: 'agent', channel: 'rollout' }, { role: 'client', channel: 'other' }];
    const ownJob: Rule[] = [operator, { role: 'agent', own: 'uid', channel: 'rollout' }, { role: 'client', channel: 'other' }];
    return [
      spec('semaphore.register', at('register'), { about: 'register a job (coordinosaur)', payload: json(SemRegister), publish: jobs, subscribe: NOBODY }),
      spec('semaphore.finished', at('finished'), { about: 'end a job: only the client that registered it', payload: (raw) => decodeSemUid(raw), publish: jobs, subscribe: NOBODY }),
      spec('semaphore.aborted', at('aborted'), { about: 'withdraw a job: only the client that registered it', payload: (raw) => decodeSemUid(raw), publish: jobs, subscribe: NOBODY }),
      spec('semaphore.concurrency', at('concurrency/set'), { about: 'set a channel limit (rollout channels: the hub only)', payload: (raw) => decodeSemConcurrency(raw), publish: [{ role: 'operator', channel: 'other' }], subscribe: NOBODY }),
      spec('semaphore.infos', at('infos'), { about: 'ask for a channel snapshot', payload: anything, publish: everyone, subscribe: NOBODY }),
      spec('semaphore.infos-reply', at('infos/reply'), { about: 'channel snapshot', payload: anything, publish: NOBODY, subscribe: everyone }),
      spec('semaphore.go', at('go/{uid}'), {
        about: 'a granted slot; on rollout channels it lets an agent update',
        payload: anything,
        publish: NOBODY,
        subscribe: ownJob,
        retained: true,
        signed: (p) => isRolloutChannel(p.channel!),
      }),
      spec('semaphore.queued', at('queued/{uid}'), { about: 'a job waits for a slot', payload: anything, publish: NOBODY, subscribe: ownJob }),
      spec('semaphore.expired', at('expired/{uid}'), { about: 'a job lost its slot or gave up waiting', payload: anything, publish: NOBODY, subscribe: ownJob, retained: true }),
      spec('semaphore.error', at('error'), { about: 'a refused semaphore message', payload: anything, publish: NOBODY, subscribe: everyone }),
      spec('semaphore.route-error', `${route}/error`, { about: 'a semaphore topic without a channel', payload: anything, publish: NOBODY, subscribe: everyone }),
    ];
  };
  return [
    spec('push', 'github/{owner}/{repo}', { about: 'one accepted push (MqttPub-compatible)', payload: json(PushMessage), publish: NOBODY, subscribe: everyone }),
    spec('head', 'pushfleet/heads/{owner}/{repo}/{ref}', { about: "a ref's newest push: what agents converge on", payload: orEmpty(json(PushMessage)), publish: NOBODY, subscribe: [operator, agent], signed: true, retained: true }),
    spec('hub.status', 'pushfleet/hub/status', { about: "the hub's presence", payload: json(HubStatus), publish: NOBODY, subscribe: everyone, retained: true }),
    spec('notify.request', 'pushfleet/notify/request', { about: 'a push from a post-receive hook, for the hub to publish', payload: json(NotifyRequest), publish: [operator], subscribe: NOBODY }),
    spec('notify.reply', 'pushfleet/notify/replies/{request}', { about: "the hub's answer to a notify", payload: anything, publish: NOBODY, subscribe: [operator] }),
    // readRetained's end-of-retained marker (src/shared/retained.ts), named by the MQTT client id;
    // nothing acts on it, so anyone may bounce one off the broker.
    spec('sync.marker', 'pushfleet/sync/{client}', { about: "a client's own round trip marking the end of the retained messages", payload: anything, publish: everyone, subscribe: everyone }),

    spec('agent.status', 'pushfleet/agents/{agent}/status', { about: "an agent's presence (its will says offline)", payload: json(AgentStatus), publish: [ownAgent], subscribe: [operator], retained: true }),
    spec('agent.heartbeat', 'pushfleet/agents/{agent}/heartbeat', { about: 'host facts, every heartbeatSeconds', payload: orEmpty(json(Heartbeat)), publish: [ownAgent], subscribe: [operator], retained: true }),
    spec('agent.app', 'pushfleet/agents/{agent}/apps/{app}', { about: "one app's state on one agent", payload: orEmpty(json(AppState)), publish: [ownAgent], subscribe: [operator], retained: true }),
    spec('agent.refused', 'pushfleet/agents/{agent}/refused', { about: 'a message the agent dropped, and why', payload: anything, publish: [ownAgent], subscribe: [operator] }),
    spec('agent.pin', 'pushfleet/agents/{agent}/pins/{app}', { about: 'hold an app at a SHA', payload: orEmpty(json(AgentDirective)), publish: NOBODY, subscribe: [operator, ownAgent], signed: true, retained: true, clearMovesAgent: true }),
    spec('agent.rollback', 'pushfleet/agents/{agent}/rollback', { about: 'go back to a SHA', payload: json(AgentDirective), publish: NOBODY, subscribe: [ownAgent], signed: true }),
    // Repeats an update a signed message already asked for; it cannot name a new SHA.
    spec('agent.retry', 'pushfleet/agents/{agent}/retry', { about: "try an app's failed update again", payload: json(RetryRequest), publish: [operator], subscribe: [ownAgent] }),
    ...agentJobTopicSpecs(),

    spec('orchestrator.time-request', 'pushfleet/orchestrator/time/request', { about: 'clock sync ping', payload: json(TimeRequest), publish: [agent], subscribe: NOBODY }),
    spec('orchestrator.time-reply', 'pushfleet/orchestrator/time/reply/{agent}', { about: 'clock sync answer', payload: json(TimeReply), publish: NOBODY, subscribe: [ownAgent] }),
    spec('orchestrator.node-info', 'pushfleet/orchestrator/nodes/{agent}/info', { about: "a node's actions and clock", payload: orEmpty(json(NodeInfo)), publish: [ownAgent], subscribe: [operator], retained: true }),
    spec('orchestrator.node-command', 'pushfleet/orchestrator/nodes/{agent}/command', { about: 'run or stop a playbook action', payload: json(NodeCommand), publish: NOBODY, subscribe: [ownAgent], signed: true }),
    spec('orchestrator.node-result', 'pushfleet/orchestrator/nodes/{agent}/result', { about: "an action's outcome", payload: json(NodeResult), publish: [ownAgent], subscribe: [operator] }),
    spec('orchestrator.run-request', 'pushfleet/orchestrator/runs/{run}/request', { about: 'start a playbook run', payload: json(RunRequest), publish: [operator], subscribe: NOBODY }),
    spec('orchestrator.run-cancel', 'pushfleet/orchestrator/runs/{run}/cancel', { about: 'cancel a playbook run', payload: json(RunCancel), publish: [operator], subscribe: NOBODY }),
    spec('orchestrator.run-events', 'pushfleet/orchestrator/runs/{run}/events', { about: "a run's progress", payload: anything, publish: NOBODY, subscribe: [operator] }),
    // The seed's plain words carry no signature: agents take them only when configured to.
    spec('seed.command', `${seed}/{agent}/COMMAND`, { about: 'seed (MQTT-Orchestrate) command words', payload: anything, publish: [operator], subscribe: [ownAgent] }),
    spec('seed.status', `${seed}/{agent}/STATUS`, { about: 'seed node status', payload: anything, publish: [ownAgent], subscribe: [operator] }),
    spec('seed.result', `${seed}/{agent}/RESULT`, { about: 'seed action result', payload: anything, publish: [ownAgent], subscribe: [operator] }),

    spec('rollouts.control', 'pushfleet/rollouts/control', { about: 'pause, resume, abort, freeze, pin, list', payload: json(RolloutControl), publish: [operator], subscribe: NOBODY }),
    spec('rollouts.reply', 'pushfleet/rollouts/replies/{request}', { about: "the hub's answer to a control request", payload: anything, publish: NOBODY, subscribe: [operator] }),
    spec('rollouts.settings', 'pushfleet/rollouts/settings', { about: 'policies and frozen environments', payload: anything, publish: NOBODY, subscribe: [operator], retained: true }),
    spec('rollouts.state', 'pushfleet/rollouts/{rollout}/state', { about: "one rollout's snapshot", payload: anything, publish: NOBODY, subscribe: [operator], retained: true }),
    spec('rollouts.events', 'pushfleet/rollouts/{rollout}/events', { about: "one rollout's events", payload: anything, publish: NOBODY, subscribe: [operator] }),

    ...semaphore(sem),
    ...semaphore(`/${sem}`),
    ...jobsTopics(opts.jobsPrefix ?? JOBS_DEFAULT_PREFIX),
    ...servicesTopics(),
  ];
}

/** A table used by one process: the spec of a topic, found once per distinct topic. */
export class TopicContract {
  readonly specs: readonly TopicSpec[];
  private readonly cache = new Map<string, { spec: TopicSpec; params: Params } | null>();

  constructor(opts: ContractOptions = {}) {
    this.specs = topicTable(opts);
  }

  /** The jobs table's trigger filters (outside the table above), and who may publish on them. */
  private triggers: { filters: readonly string[]; rules: readonly Rule[] } = { filters: [], rules: [] };
  private readonly triggerCache = new Map<string, boolean>();

  /** The jobs engine sets its current trigger filters on every load of its table. */
  setJobTriggers(filters: readonly string[], roles: readonly Rule['role'][]): void {
    this.triggers = { filters: [...filters], rules: roles.map((role) => ({ role })) };
    this.triggerCache.clear();
  }

  /** Who may publish `topic` as a job trigger (null: it is no trigger topic); only for topics outside the table. */
  triggerRules(topic: string): readonly Rule[] | null {
    let hit = this.triggerCache.get(topic);
    if (hit === undefined) {
      hit = this.triggers.filters.some((f) => topicMatches(f, topic));
      if (this.triggerCache.size >= 10_000) this.triggerCache.clear();
      this.triggerCache.set(topic, hit);
    }
    return hit ? this.triggers.rules : null;
  }

  /**
   * The names of pushfleet's own topics a filter reaches (a trigger filter must reach none, but
   * for the jobs' completions, which is how jobs chain).
   */
  ownTopicsUnder(filter: string): string[] {
    return this.specs.filter((s) => s.name !== 'jobs.complete' && s.name !== 'jobs.failed' && s.pattern.overlap(filter) !== null).map((s) => s.name);
  }

  /** The spec `topic` belongs to, with its parameter values; null for a topic outside the table. */
  lookup(topic: string): { spec: TopicSpec; params: Params } | null {
    let found = this.cache.get(topic);
    if (found === undefined) {
      found = null;
      for (const spec of this.specs) {
        const params = spec.pattern.match(topic);
        if (params) {
          found = { spec, params };
          break;
        }
      }
      // Bounded: topics come from the network.
      if (this.cache.size >= 10_000) this.cache.clear();
      this.cache.set(topic, found);
    }
    return found;
  }

  /** Whether a message on `topic` must carry the hub's signature. */
  isSigned(topic: string): boolean {
    return this.signedSpec(topic) !== null;
  }

  /** The spec of `topic` when its messages must carry the hub's signature, else null. */
  signedSpec(topic: string): TopicSpec | null {
    const found = this.lookup(topic);
    if (!found) return null;
    const { signed } = found.spec;
    return (typeof signed === 'function' ? signed(found.params) : signed) ? found.spec : null;
  }
}
