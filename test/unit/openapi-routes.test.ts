import type { Router } from 'express';
import { describe, expect, it } from 'vitest';
import { ApiAuth } from '../../src/hub/api/api-auth.js';
import { apiRouter, type ApiDeps } from '../../src/hub/api/api-router.js';
import { createLogger } from '../../src/shared/logger.js';
import { loadSpec, specOperations } from '../support/openapi.js';

type Layer = { route?: { path: string; methods: Record<string, boolean> }; handle?: { stack?: Layer[] } };

/** Every route an express router (and the routers it mounts, all at its own path) serves, as `METHOD /path/{param}`. */
function routesOf(router: Router): string[] {
  const walk = (stack: Layer[]): string[] =>
    stack.flatMap((layer) =>
      layer.route
        ? Object.keys(layer.route.methods)
            .filter((m) => m !== '_all')
            .map((m) => `${m.toUpperCase()} ${layer.route!.path.replace(/:(\w+)/g, '{$1}')}`)
        : layer.handle?.stack
          ? walk(layer.handle.stack)
          : [],
    );
  return [...new Set(walk((router as unknown as { stack: Layer[] }).stack))].sort();
}

describe('openapi.yaml', () => {
  it('documents every route the API serves, and the API serves every operation it documents', async () => {
    const log = createLogger('test', 'silent');
    // The routers are only built here: no dependency is called before a request.
    const deps = new Proxy({ auth: new ApiAuth({ users: () => new Map(), log }), log } as Partial<ApiDeps>, {
      get: (target, key) => (key in target ? target[key as keyof ApiDeps] : () => undefined),
    }) as ApiDeps;
    const served = routesOf(apiRouter(deps));
    expect(served.length).toBeGreaterThan(0);
    expect(served).toEqual(specOperations(await loadSpec()));
  });
});
