/**
 * Every MQTT topic pushfleet uses, in one place. Names from the network never reach a topic
 * unvalidated: repos are checked by RepoName, refs are percent-encoded into one level.
 */
export const ROOT = 'pushfleet';

/** The push event, one message per accepted push (MqttPub-compatible topic). */
export const pushTopic = (repo: string): string => `github/${repo}`;

/** Retained newest push per ref: what agents converge on, even after being offline. */
export const headTopic = (repo: string, ref: string): string =>
  `${ROOT}/heads/${repo}/${encodeURIComponent(ref)}`;
export const headFilter = (repo: string): string => `${ROOT}/heads/${repo}/+`;
export const HEADS_ALL = `${ROOT}/heads/#`;

export const agentStatusTopic = (agent: string): string => `${ROOT}/agents/${agent}/status`;
export const agentHeartbeatTopic = (agent: string): string => `${ROOT}/agents/${agent}/heartbeat`;
export const appStateTopic = (agent: string, app: string): string => `${ROOT}/agents/${agent}/apps/${app}`;
export const AGENTS_ALL = `${ROOT}/agents/#`;

/** A topic level may not hold separators or wildcards; agent and app names obey this. */
export const TOPIC_LEVEL = /^[A-Za-z0-9._-]{1,128}$/;
