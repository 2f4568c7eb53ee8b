/**
 * aedes-persistence's own conformance suite (abstract.js, written for node:test) run against
 * `SqlitePersistence`, each instance on a fresh broker.sqlite. Run by
 * test/integration/broker-persistence-conformance.test.ts as `node --test` on the built file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { BrokerStore } from '../../src/hub/broker/broker-store.js';
import { SqlitePersistence } from '../../src/hub/broker/sqlite-persistence.js';

const require = createRequire(import.meta.url);
const abstractSuite = require('aedes-persistence/abstract.js') as (opts: object) => void;

const root = mkdtempSync(join(tmpdir(), 'pushfleet-conformance-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

abstractSuite({ test, testAsync: true, persistence: () => new SqlitePersistence(BrokerStore.open(join(root, String(++n)))) });
