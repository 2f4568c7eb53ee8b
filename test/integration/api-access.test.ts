import { afterEach, describe, expect, it } from 'vitest';
import { apiClient, apiTokens } from '../support/api-client.js';
import { Cleanup } from '../support/cleanup.js';
import { loadSpec, specOperations } from '../support/openapi.js';
import { startTestHub } from '../support/test-hub.js';
import { waitFor } from '../support/wait.js';

const spec = await loadSpec();

/** A well-formed value for each path parameter, by the path it is in. */
function concrete(template: string): string {
  const id = template.startsWith('/rollouts') ? 'web.production.0123456789ab' : template.startsWith('/jobs') ? '0123456789' : 'a1';
  return template.replace('{id}', id).replace('{app}', 'web').replace('{env}', 'production').replace('{name}', 'svc');
}

describe('API access: every documented route of a real hub', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('answers 401 without a token and 403 to a viewer on every action', async () => {
    const hub = await startTestHub(cleanup, 'aedes');
    const { viewer } = await apiTokens(hub.usersFile!);
    const api = apiClient(spec, `http://127.0.0.1:${hub.httpPort}`);
    await waitFor('the viewer token taken', async () => (await api.get('/agents', viewer)).status === 200);
    // Once: five wrong ones from an address make it wait (429), which the spec also documents.
    expect((await api.get('/agents', 'ci-viewer:not-the-password')).status).toBe(401);
    const operations = specOperations(spec);
    expect(operations.length).toBeGreaterThan(20);
    for (const operation of operations) {
      const [method, template] = operation.split(' ') as ['GET' | 'POST' | 'DELETE', string];
      const send = (token?: string) => (method === 'GET' ? api.get(concrete(template), token) : method === 'POST' ? api.post(concrete(template), token) : api.delete(concrete(template), token));
      expect((await send()).status, `${operation} without a token`).toBe(401);
      // A stream ticket is a viewer's read (the live stream), not an action.
      if (method !== 'GET' && template !== '/events/tickets') expect(await send(viewer), `${operation} as a viewer`).toMatchObject({ status: 403, body: { code: 'forbidden' } });
    }
  });
});
