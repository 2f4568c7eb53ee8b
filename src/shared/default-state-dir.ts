import { homedir } from 'node:os';
import { join } from 'node:path';

/** Where a service keeps its state: systemd's StateDirectory (its first entry), else XDG state home / `name`. */
export function defaultStateDir(name: 'pushfleet' | 'pushfleet-agent'): string {
  if (process.env.STATE_DIRECTORY) return process.env.STATE_DIRECTORY.split(':')[0]!;
  return join(process.env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'), name);
}
