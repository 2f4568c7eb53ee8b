/** The hub's REST API as the page calls it: same origin, the token as a Bearer header, errors as ApiFailure. */

export type Role = 'viewer' | 'operator';
export type Caller = { name: string; role: Role };
export type Page<T> = { items: T[]; total: number; offset: number; limit: number };

/** An answer other than 2xx: its status and the API's one-line `{error, code}`. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class ApiClient {
  constructor(private readonly token: string) {}

  get<T>(path: string): Promise<T> {
    return this.call<T>('GET', path);
  }

  post<T>(path: string): Promise<T> {
    return this.call<T>('POST', path);
  }

  delete<T>(path: string): Promise<T> {
    return this.call<T>('DELETE', path);
  }

  private async call<T>(method: string, path: string): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`/api/v1${path}`, { method, headers: { authorization: `Bearer ${this.token}`, accept: 'application/json' }, cache: 'no-store', credentials: 'omit' });
    } catch {
      throw new ApiFailure(0, 'unreachable', 'the hub did not answer (is it running?)');
    }
    const body = (await res.json().catch(() => undefined)) as unknown;
    if (res.ok) return body as T;
    const { error, code } = (body ?? {}) as { error?: unknown; code?: unknown };
    throw new ApiFailure(res.status, typeof code === 'string' ? code : 'http', typeof error === 'string' ? error : `${method} ${path}: HTTP ${res.status}`);
  }
}

/** A path segment from data (an id, an app name), so it cannot step out of its place in the path. */
export const seg = (value: string): string => encodeURIComponent(value);
