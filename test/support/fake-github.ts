import { createServer, type IncomingMessage } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Cleanup } from './cleanup.js';

export type GitHubCall = { method: string; path: string; headers: IncomingMessage['headers']; body: any };

/**
 * A local stand-in for GitHub's REST API, speaking its wire format for the two calls
 * pushfleet makes (create a deployment, create a deployment status). `failNext` makes the
 * next calls answer 500, as GitHub does when it has a bad day.
 */
export async function startFakeGitHub(cleanup: Cleanup, token: string) {
  const calls: GitHubCall[] = [];
  let nextId = 1000;
  let failures = 0;
  const server = createServer(async (req, res) => {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(body));
    };
    const call: GitHubCall = { method: req.method!, path: req.url!, headers: req.headers, body: raw ? JSON.parse(raw) : null };
    calls.push(call);
    if (req.headers.authorization !== `Bearer ${token}`) return send(401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' });
    if (failures > 0) {
      failures--;
      return send(500, { message: 'Server Error' });
    }
    const deployment = /^\/repos\/([^/]+)\/([^/]+)\/deployments$/.exec(req.url!);
    const status = /^\/repos\/([^/]+)\/([^/]+)\/deployments\/(\d+)\/statuses$/.exec(req.url!);
    if (req.method === 'POST' && deployment) {
      const id = nextId++;
      return send(201, { url: `http://github.test/repos/${deployment[1]}/${deployment[2]}/deployments/${id}`, id, sha: call.body.ref, ref: call.body.ref, environment: call.body.environment, payload: call.body.payload, created_at: new Date().toISOString() });
    }
    if (req.method === 'POST' && status) {
      return send(201, { id: nextId++, state: call.body.state, environment: call.body.environment, description: call.body.description, deployment_url: `http://github.test/repos/${status[1]}/${status[2]}/deployments/${status[3]}` });
    }
    send(404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanup.defer(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    failNext(n: number) {
      failures = n;
    },
    /** The states posted for one deployment, in order. */
    statesOf: (deploymentId: number) => calls.filter((c) => c.path.endsWith(`/deployments/${deploymentId}/statuses`)).map((c) => c.body.state as string),
  };
}
