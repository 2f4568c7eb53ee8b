/**
 * Every MQTT topic pushfleet uses, in one place. Names from the network never reach a topic
 * unvalidated: repos are checked by RepoName, refs are percent-encoded into one level.
 */
export const ROOT = 'pushfleet';
/** A client's message to itself, marking the end of the retained messages it read (retained.ts). */
export const syncTopic = (clientId: string): string => `${ROOT}/sync/${clientId}`;

/** The push event, one message per accepted push (MqttPub-compatible topic). */
export const pushTopic = (repo: string): string => `github/${repo}`;

/** Retained newest push per ref: what agents converge on, even after being offline. */
export const headTopic = (repo: string, ref: string): string =>
  `${ROOT}/heads/${repo}/${encodeURIComponent(ref)}`;
export const headFilter = (repo: string): string => `${ROOT}/heads/${repo}/+`;
/**
 * The QoS agents subscribe to heads with. A head is retained and stored by the broker before any
 * subscriber gets it, and an agent subscribes again on every connect, which delivers it again:
 * that is what brings an agent to the newest head after a lost connection or a broker or hub
 * restart. QoS 1 added nothing to that (a clean session drops what it has not acknowledged with
 * its connection; a persistent one gets the retained head at its new SUBSCRIBE), and cost a PUBACK
 * per agent per push and, for each persistent session offline, a queue entry the broker stores.
 */
export const HEAD_SUBSCRIPTION_QOS = 0;
export const HEADS_ALL = `${ROOT}/heads/#`;

/** `pushfleet notify` (a post-receive hook) asks the hub to publish a push; the hub answers on the reply topic. */
export const NOTIFY_REQUEST = `${ROOT}/notify/request`;
export const notifyReplyTopic = (requestId: string): string => `${ROOT}/notify/replies/${requestId}`;

/** The hub's own presence, retained; its last will says offline. */
export const HUB_STATUS = `${ROOT}/hub/status`;

export const agentStatusTopic = (agent: string): string => `${ROOT}/agents/${agent}/status`;
export const agentHeartbeatTopic = (agent: string): string => `${ROOT}/agents/${agent}/heartbeat`;
export const appStateTopic = (agent: string, app: string): string => `${ROOT}/agents/${agent}/apps/${app}`;
export const AGENTS_ALL = `${ROOT}/agents/#`;

/** A topic level may not hold separators or wildcards; agent and app names obey this. */
export const TOPIC_LEVEL = /^[A-Za-z0-9._-]{1,128}$/;

// ─── Orchestrator (issue 5) ─────────────────────────────────────────────────────────────────────
export const AGENT_STATUS_ALL = `${ROOT}/agents/+/status`;

/** The native protocol: JSON messages between hub, agents and `pushfleet play`. */
const ORCH = `${ROOT}/orchestrator`;
export const TIME_REQUEST = `${ORCH}/time/request`;
export const timeReplyTopic = (agent: string): string => `${ORCH}/time/reply/${agent}`;
export const nodeInfoTopic = (agent: string): string => `${ORCH}/nodes/${agent}/info`;
export const nodeCommandTopic = (agent: string): string => `${ORCH}/nodes/${agent}/command`;
export const nodeResultTopic = (agent: string): string => `${ORCH}/nodes/${agent}/result`;
export const NODE_INFO_ALL = `${ORCH}/nodes/+/info`;
export const NODE_RESULT_ALL = `${ORCH}/nodes/+/result`;
export const runRequestTopic = (runId: string): string => `${ORCH}/runs/${runId}/request`;
export const runCancelTopic = (runId: string): string => `${ORCH}/runs/${runId}/cancel`;
export const runEventsTopic = (runId: string): string => `${ORCH}/runs/${runId}/events`;
export const RUN_REQUEST_ALL = `${ORCH}/runs/+/request`;
export const RUN_CANCEL_ALL = `${ORCH}/runs/+/cancel`;

/**
 * The seed's (MQTT-Orchestrate) plain-word topics, under a configurable root. The default is the
 * root of the seed's global.config.sample, so its playbooks and nodes work unchanged.
 */
export const SEED_DEFAULT_ROOT = 'testlab';
export const seedCommandTopic = (root: string, node: string): string => `${root}/${node}/COMMAND`;
export const seedStatusTopic = (root: string, node: string): string => `${root}/${node}/STATUS`;
export const seedResultTopic = (root: string, node: string): string => `${root}/${node}/RESULT`;
export const seedStatusFilter = (root: string): string => `${root}/+/STATUS`;
/** A seed root: one or more topic levels, no wildcards. */
export const SEED_ROOT = /^[A-Za-z0-9._-]{1,128}(?:\/[A-Za-z0-9._-]{1,128}){0,7}$/;

/**
 * Semaphore engine (coordinosaur wire format): `{route}/{channel}/{action}[/{uid}]`, where route is
 * the configured prefix (default "coordinosaur") with or without the leading "/" the client used.
 */
export const SEM_DEFAULT_PREFIX = 'coordinosaur';
export type SemInput = 'register' | 'finished' | 'aborted' | 'concurrency/set' | 'infos';
export type SemOutput = 'go' | 'queued' | 'expired' | 'error' | 'infos/reply';
export const SEM_INPUTS: readonly string[] = ['register', 'finished', 'aborted', 'concurrency/set', 'infos'] satisfies SemInput[];
/**
 * What the engine serves, in both prefix styles (the seed's README writes a leading "/", its
 * server none): every action and anything of one or two levels, so a wrong topic is answered, but
 * not the levels below `{channel}/go`, `queued`, `expired` or `infos`, where its own events would
 * come back to it.
 */
export const semaphoreFilters = (prefix: string): string[] =>
  [prefix, `/${prefix}`].flatMap((route) => [route, `${route}/+`, `${route}/+/+`, `${route}/+/concurrency/set`]);
/** The engine's retained topics, read back once at start to check them against its state. */
export const semaphoreRetainedFilters = (prefix: string): string[] =>
  [prefix, `/${prefix}`].flatMap((route) => [`${route}/+/go/+`, `${route}/+/expired/+`]);
export const semaphoreTopic = (route: string, channel: string, action: SemInput | SemOutput, uid?: string): string =>
  uid === undefined ? `${route}/${channel}/${action}` : `${route}/${channel}/${action}/${uid}`;
/** Errors about topics too short to name a channel. */
export const semaphoreRootErrorTopic = (route: string): string => `${route}/error`;

// ─── Rollouts (issue 4) ─────────────────────────────────────────────────────────────────────────
const ROLLOUTS = `${ROOT}/rollouts`;
/** Retained snapshot of one rollout, republished on every change. */
export const rolloutStateTopic = (id: string): string => `${ROLLOUTS}/${id}/state`;
export const rolloutEventsTopic = (id: string): string => `${ROLLOUTS}/${id}/events`;
export const ROLLOUT_STATE_ALL = `${ROLLOUTS}/+/state`;
export const ROLLOUT_EVENTS_ALL = `${ROLLOUTS}/+/events`;
export const ROLLOUT_CONTROL = `${ROLLOUTS}/control`;
export const rolloutReplyTopic = (requestId: string): string => `${ROLLOUTS}/replies/${requestId}`;
/** Retained policies and frozen environments, so `explain` plans as the hub would. */
export const ROLLOUT_SETTINGS = `${ROLLOUTS}/settings`;
/** Retained per pinned app; empty when unpinned. */
export const agentPinTopic = (agent: string, app: string): string => `${ROOT}/agents/${agent}/pins/${app}`;
export const agentRollbackTopic = (agent: string): string => `${ROOT}/agents/${agent}/rollback`;
/** `pushfleet retry`: try an app's last failed update again (not retained). */
export const agentRetryTopic = (agent: string): string => `${ROOT}/agents/${agent}/retry`;
/** An agent's report of a message it refused to act on (bad or missing signature), not retained. */
export const agentRefusedTopic = (agent: string): string => `${ROOT}/agents/${agent}/refused`;
export const AGENT_APPS_ALL = `${ROOT}/agents/+/apps/+`;

// ─── Jobs engine, agent executor (issue 12) ─────────────────────────────────────────────────────
/** Hub → agent (signed): start or stop a run; agent → hub (retained): the run's state. */
export const agentJobsPrefix = (agent: string): string => `${ROOT}/agents/${agent}/jobs/`;
export const agentJobTopic = (agent: string, run: string, leaf: 'start' | 'stop' | 'status'): string => `${agentJobsPrefix(agent)}${run}/${leaf}`;
export const AGENT_JOB_STATUS_ALL = `${ROOT}/agents/+/jobs/+/status`;

/** Semaphore channels of rollouts: `pushfleet-rollout.{rollout id}`, claimed by the rollouts engine. */
export const ROLLOUT_CHANNEL_PREFIX = 'pushfleet-rollout.';
export const rolloutChannel = (id: string): string => `${ROLLOUT_CHANNEL_PREFIX}${id}`;
/** The agent label naming its environment, and the environment of an agent without one. */
export const ENV_LABEL = 'env';
export const DEFAULT_ENV = 'default';
export const rolloutId = (app: string, env: string, sha: string): string => `${app}.${env}.${sha.slice(0, 12)}`;
