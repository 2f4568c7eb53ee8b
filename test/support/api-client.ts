import request from 'supertest';
import { addBrokerUser } from './broker-users.js';
import { expectSpecAnswer, type Spec } from './openapi.js';

export type ApiAnswer = { status: number; body: any; headers: Record<string, string | string[] | undefined> };

/**
 * A hub's REST API through supertest, each answer checked against openapi.yaml: `get` and
 * `post` with a token (`name:password`, as Bearer) or none.
 */
export function apiClient(spec: Spec, baseUrl: string) {
  const send = async (method: 'GET' | 'POST', path: string, token?: string): Promise<ApiAnswer> => {
    const url = `/api/v1${path}`;
    let req = method === 'GET' ? request(baseUrl).get(url) : request(baseUrl).post(url);
    if (token !== undefined) req = req.set('authorization', `Bearer ${token}`);
    const res = await req;
    const answer = { status: res.status, body: res.body, headers: res.headers };
    expectSpecAnswer(spec, method, url, answer);
    return answer;
  };
  return { get: (path: string, token?: string) => send('GET', path, token), post: (path: string, token?: string) => send('POST', path, token) };
}

/** A viewer and an operator token of a hub's users file. */
export async function apiTokens(usersFile: string): Promise<{ viewer: string; operator: string }> {
  return { viewer: `ci-viewer:${await addBrokerUser(usersFile, 'ci-viewer', 'viewer')}`, operator: `ci-operator:${await addBrokerUser(usersFile, 'ci-operator', 'operator')}` };
}
