import type { EngineContext } from '../engine.js';
import { AgentExecutor } from './agent-executor.js';
import type { JobsConfig } from './config.js';
import { JobsEngine, type JobsDeps } from './jobs-engine.js';
import { createKubernetesExecutor } from './kubernetes-executor.js';
import { openLogStore } from './log-store.js';
import { parseTable } from './table.js';
import { openTableSource } from './table-source.js';

/**
 * The jobs engine with its real adapters: the table's source (file, https, s3), the log store,
 * the agent executor, and the Kubernetes one when a cluster is configured (without one, its rows
 * are row errors that say why, and agent rows still work).
 */
export function createJobsEngine(ctx: EngineContext, config: JobsConfig & { table: string }, stateDir: string): JobsEngine {
  const log = ctx.log.child({ engine: 'jobs' });
  const executors: JobsDeps['executors'] = { agent: new AgentExecutor({ publisher: ctx.publisher, clock: ctx.clock, log }, config) };
  const unavailable: JobsDeps['unavailable'] = {};
  try {
    executors.kubernetes = createKubernetesExecutor(config.kubernetes, { clock: ctx.clock, log });
  } catch (err) {
    unavailable.kubernetes = (err as Error).message;
  }
  return new JobsEngine(ctx, config, {
    source: openTableSource(config.table, { s3: config.s3 }),
    parse: (table, refuse) => parseTable(table.text, table.format, { prefix: config.prefix, refuse }),
    executors,
    unavailable,
    logs: openLogStore(config.logs, stateDir, config.s3),
  });
}
