import { createHmac, randomUUID } from 'node:crypto';
import recorded from '../fixtures/github-push-event.json' with { type: 'json' };

const template = recorded as Record<string, any>;

export type PushFields = { repo?: string; ref?: string; before?: string; after: string; deleted?: boolean; created?: boolean; forced?: boolean };

/** A realistic GitHub `push` payload (a recorded one, ~7 KB) with the fields a test cares about. */
export function githubPushPayload(f: PushFields): Record<string, any> {
  const p = structuredClone(template);
  const repo = f.repo ?? 'acme/web';
  p.ref = f.ref ?? 'refs/heads/main';
  p.before = f.before ?? '0'.repeat(40);
  p.after = f.after;
  p.deleted = f.deleted ?? false;
  p.created = f.created ?? false;
  p.forced = f.forced ?? false;
  p.repository.full_name = repo;
  p.repository.name = repo.split('/')[1];
  p.repository.clone_url = `https://github.com/${repo}.git`;
  p.head_commit = f.deleted ? null : { ...p.head_commit, id: f.after, tree_id: f.after };
  p.commits = f.deleted ? [] : p.commits.map((c: Record<string, unknown>) => ({ ...c, id: f.after }));
  return p;
}

export const sign = (secret: string, body: string): string => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

export type SignedRequest = { body: string; headers: Record<string, string> };

/** Headers exactly as GitHub sends them, signed with `secret`. */
export function signedRequest(secret: string, event: string, payload: unknown, delivery: string = randomUUID()): SignedRequest {
  const body = JSON.stringify(payload);
  return {
    body,
    headers: {
      'content-type': 'application/json',
      'user-agent': 'GitHub-Hookshot/test',
      'x-github-event': event,
      'x-github-delivery': delivery,
      'x-github-hook-id': '1',
      'x-hub-signature-256': sign(secret, body),
    },
  };
}

export async function postWebhook(url: string, req: SignedRequest): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { method: 'POST', headers: req.headers, body: req.body });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // left as text: the assertion will show it
  }
  return { status: res.status, body };
}
