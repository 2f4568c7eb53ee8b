import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decode } from '../../src/shared/messages.js';
import { NodeInfo } from '../../src/shared/contract/orchestrator-messages.js';
import { NODE_INFO_ALL } from '../../src/shared/topics.js';
import { startAgentProcess } from './agent-process.js';
import type { CliProcess } from './cli-process.js';
import type { Cleanup } from './cleanup.js';
import { watch } from './test-hub.js';
import { waitFor } from './wait.js';

/** The harmless iperf stand-in; found from the sources whether this runs from test/ or dist/test/. */
export const FAKE_IPERF = [new URL('../fixtures/playbooks/fake-iperf.mjs', import.meta.url), new URL('../../../test/fixtures/playbooks/fake-iperf.mjs', import.meta.url)]
  .map((u) => fileURLToPath(u))
  .find(existsSync)!;

export const PLAYBOOKS = join(FAKE_IPERF, '..');

/** An orchestrator action running one fake-iperf mode; the playbook's words are appended. */
export const fakeAction = (stateDir: string, mode: string, extra: Record<string, unknown> = {}) => ({
  command: [process.execPath, FAKE_IPERF, stateDir, mode],
  args: 'append',
  ...extra,
});

/** `acceptSeedCommands`: run the seed's unsigned plain-word commands (seed playbooks need it). */
export type NodeSpec = { id: string; labels?: Record<string, string>; actions: Record<string, unknown>; queueSize?: number; acceptSeedCommands?: boolean };

/** A temp dir where fake-iperf leaves a pid file per action; cleanup kills whatever is left. */
export function actionStateDir(cleanup: Cleanup): string {
  const dir = mkdtempSync(join(tmpdir(), 'pushfleet-actions-'));
  cleanup.defer(() => {
    for (const p of livePids(dir)) process.kill(p.pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** fake-iperf runs still alive, with the node that started each (from PUSHFLEET_NODE). */
export function livePids(stateDir: string): { pid: number; node: string; what: string }[] {
  if (!existsSync(stateDir)) return [];
  return readdirSync(stateDir)
    .filter((f) => f.endsWith('.pid'))
    .map((f) => {
      const [node = '?', ...what] = readFileSync(join(stateDir, f), 'utf8').trim().split(' ');
      return { pid: Number(f.slice(0, -4)), node, what: what.join(' ') };
    })
    .filter(({ pid }) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    });
}

/** Starts one real agent process per spec, each an orchestrator node named by its id. */
export async function startNodes(cleanup: Cleanup, mqttUrl: string, specs: readonly NodeSpec[], logLevel = 'debug'): Promise<Map<string, CliProcess>> {
  const agents = await Promise.all(
    specs.map((s) =>
      startAgentProcess(cleanup, {
        id: s.id,
        mqttUrl,
        labels: s.labels,
        logLevel,
        orchestrator: { actions: s.actions, ...(s.queueSize !== undefined && { queueSize: s.queueSize }), ...(s.acceptSeedCommands && { acceptSeedCommands: true }) },
      }),
    ),
  );
  return new Map(specs.map((s, i) => [s.id, agents[i]!]));
}

/** Waits until every node has measured its clock against the hub (needed for native runs). */
export async function waitForClocks(cleanup: Cleanup, mqttUrl: string, ids: readonly string[]): Promise<Map<string, NodeInfo>> {
  const infos = await watch(cleanup, mqttUrl, NODE_INFO_ALL);
  const synced = () => {
    const found = new Map<string, NodeInfo>();
    for (const m of infos.messages) {
      const info = decode(NodeInfo, m.payload);
      if (info.ok && info.value.clock) found.set(info.value.agent, info.value);
    }
    return ids.every((id) => found.has(id)) ? found : undefined;
  };
  return waitFor(() => `clock of ${ids.join(', ')}; seen ${infos.messages.map((m) => m.topic).join(', ')}`, synced);
}
