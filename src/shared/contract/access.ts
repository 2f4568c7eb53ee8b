import type { Identity } from './roles.js';
import { isRolloutChannel, type Rule, type TopicContract } from './topic-table.js';
import { ANY, type Covered } from './topic-pattern.js';

/** Why `who` may not publish on `topic`, or null when it may. */
export function refusePublish(contract: TopicContract, who: Identity, topic: string): string | null {
  if (!isTopicName(topic)) return `"${topic.slice(0, 120)}" is not a topic name`;
  if ('role' in who && who.role === 'hub') return null;
  const found = contract.lookup(topic);
  if (!found) {
    const trigger = contract.triggerRules(topic);
    if (trigger?.some((rule) => allows(rule, who, {}))) return null;
    const why = trigger ? `; ${whoMay(trigger, 'publish')} (engines.jobs.triggerRoles)` : '';
    return `${describe(who)} may not publish ${trigger ? 'on the job trigger' : "outside pushfleet's topics"} (${topic.slice(0, 120)})${why}`;
  }
  const { spec, params } = found;
  return spec.publish.some((rule) => allows(rule, who, params)) ? null : `${describe(who)} may not publish ${spec.name} (${topic.slice(0, 120)}); ${whoMay(spec.publish, 'publish')}`;
}

/**
 * Why `who` may not subscribe to `filter`, or null when it may: every topic of the table the
 * filter covers must be readable by `who` wherever the filter reaches (a `+` over an agent id
 * reaches other agents' topics too).
 */
export function refuseSubscribe(contract: TopicContract, who: Identity, filter: string): string | null {
  if (!isFilter(filter)) return `"${filter.slice(0, 120)}" is not a topic filter`;
  if ('role' in who && (who.role === 'hub' || who.role === 'operator')) return null;
  let covered = 0;
  for (const spec of contract.specs) {
    const reach = spec.pattern.overlap(filter);
    if (!reach) continue;
    covered++;
    if (!spec.subscribe.some((rule) => allows(rule, who, reach))) return `${describe(who)} may not read ${spec.name} (${filter.slice(0, 120)}); ${whoMay(spec.subscribe, 'read')}`;
  }
  return covered > 0 ? null : `${describe(who)} may not read outside pushfleet's topics (${filter.slice(0, 120)})`;
}

function allows(rule: Rule, who: Identity, params: Covered): boolean {
  // Anonymous (when allowed) stands for any agent or client: own-name levels do not bind it.
  if ('anonymous' in who) return channelAllows(rule, params);
  if (rule.role !== who.role) return false;
  if (rule.own !== undefined && params[rule.own] !== who.name) return false;
  return channelAllows(rule, params);
}

function channelAllows(rule: Rule, params: Covered): boolean {
  if (rule.channel === undefined) return true;
  const channel = params.channel;
  // A `+` over the channel reaches both kinds, so neither restriction holds for it.
  if (channel === undefined || channel === ANY) return false;
  return (rule.channel === 'rollout') === isRolloutChannel(channel);
}

function describe(who: Identity): string {
  return 'anonymous' in who ? 'an anonymous client' : `${who.role} "${who.name}"`;
}

function whoMay(rules: readonly Rule[], verb: string): string {
  const roles = [...new Set(rules.map((r) => r.role + (r.own ? ` (its own ${r.own})` : '') + (r.channel ? ` (${r.channel} channels)` : '')))];
  return roles.length ? `only the hub and ${roles.join(', ')} may ${verb} it` : `only the hub may ${verb} it`;
}

const isTopicName = (topic: string): boolean => topic.length > 0 && topic.length <= 65_535 && !/[+#\u0000]/.test(topic);

/** Whether `filter` is a well-formed MQTT subscription filter (`+`, `#` as whole levels, `#` last). */
export function isFilter(filter: string): boolean {
  if (filter.length === 0 || filter.length > 65_535 || filter.includes('\u0000')) return false;
  const levels = filter.split('/');
  return levels.every((l, i) => (l.includes('#') ? l === '#' && i === levels.length - 1 : !l.includes('+') || l === '+'));
}

