import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
// Compiled to dist/src/shared, sources in src/shared: package.json is found from either.
function findVersion(): string {
  for (const path of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = require(path) as { name?: string; version?: string };
      if (pkg.name === 'pushfleet' && pkg.version) return pkg.version;
    } catch {
      // try the next location
    }
  }
  return '0.0.0';
}
export const VERSION = findVersion();
