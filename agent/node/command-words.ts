import type { NodeAction } from './node-config.js';

/** Longest word any action accepts, whatever its argPattern says. */
const MAX_WORD = 256;

export type ResolvedAction = { ok: true; action: string; argv: string[]; cwd: string | undefined } | { ok: false; reason: string };

/** A seed COMMAND payload as words: the first names the action, the rest are its arguments. */
export const splitWords = (message: string): string[] => message.trim().split(/\s+/).filter(Boolean);

/**
 * Turns an action name and words from a message into an argv, only as the node's own config
 * allows: the command comes from the config, and words are appended as separate argv elements
 * (never through a shell) only for `args: append`, each matching `argPattern`, at most `maxArgs`.
 */
export function resolveAction(actions: Readonly<Record<string, NodeAction>>, name: string, args: readonly string[]): ResolvedAction {
  const action = Object.hasOwn(actions, name) ? actions[name] : undefined;
  if (!action) return { ok: false, reason: `unknown action "${name.slice(0, 64)}" (this node offers: ${Object.keys(actions).join(', ') || 'none'})` };
  if (args.length && action.args === 'none') return { ok: false, reason: `action ${name} takes no arguments` };
  if (args.length > action.maxArgs) return { ok: false, reason: `action ${name} takes at most ${action.maxArgs} arguments, got ${args.length}` };
  const pattern = new RegExp(action.argPattern, 'u');
  const bad = args.findIndex((a) => a.length > MAX_WORD || !pattern.test(a));
  if (bad >= 0) return { ok: false, reason: `argument ${bad + 1} of ${name} ("${args[bad]!.slice(0, 40)}") does not match ${action.argPattern}` };
  return { ok: true, action: name, argv: [...action.command, ...args], cwd: action.cwd };
}
