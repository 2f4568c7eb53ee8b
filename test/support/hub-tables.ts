import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { PushMessage } from '../../src/shared/messages.js';

/** The heads table of a hub's hub.sqlite: each topic with the SHA of the head stored there (rows hold the hub's signed envelope). */
export function storedHeads(stateDir: string): [string, string][] {
  const db = new Database(join(stateDir, 'hub.sqlite'), { readonly: true });
  try {
    return db.prepare<[], { topic: string; payload: string }>('SELECT topic, payload FROM heads ORDER BY topic').all().map((r) => {
      const stored = JSON.parse(r.payload) as { payload: string };
      return [r.topic, (JSON.parse(stored.payload) as PushMessage).after];
    });
  } finally {
    db.close();
  }
}
