import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MqttClient } from 'mqtt';
import { decode } from '../shared/messages.js';
import { NodeResult } from '../shared/contract/orchestrator-messages.js';
import { TopicContract } from '../shared/contract/topic-table.js';
import { seedCommandTopic, seedResultTopic, seedStatusFilter } from '../shared/topics.js';
import { preciseNow } from '../hub/engines/orchestrator/precise-time.js';
import type { SeedInstruction } from '../hub/engines/orchestrator/seed-playbook.js';
import { StatusBook } from '../hub/engines/orchestrator/waitfor.js';
import { receiveOnce, type Receiving } from './tcp-receive.js';

export type InstructionResult = { line: number; text: string; status: 'ok' | 'failed' | 'skipped'; startedAt: number | null; endedAt: number | null; detail: string | null };
export type SeedReport = {
  v: 1;
  format: 'seed';
  file: string;
  root: string;
  status: 'ok' | 'failed' | 'cancelled';
  startedAt: number;
  endedAt: number;
  instructions: InstructionResult[];
  /** What the nodes reported about each action they ran (pushfleet nodes only). */
  results: NodeResult[];
};

export type SeedPlayerDeps = {
  mqtt: MqttClient;
  root: string;
  waitforTimeoutMs: number;
  receiveTimeoutMs: number;
  /** Absolute directory RECEIVE writes its files into (their names are plain: seed-playbook.ts). */
  outDir: string;
  progress(line: string): void;
};

/**
 * Plays a seed playbook from this machine, as the seed's orchestrate.sh did (RECEIVE listens
 * here), with the WAITFOR rules of waitfor.ts. `interrupt()` (Ctrl-C) ends the current
 * instruction and sends STOP to every node this run has sent a command to.
 */
export class SeedPlayer {
  private readonly book = new StatusBook();
  private readonly waiters = new Set<() => void>();
  private readonly sentTo = new Set<string>();
  private readonly results: NodeResult[] = [];
  private readonly receiving: { ins: InstructionResult; name: string; path: string; r: Receiving }[] = [];
  private readonly abort = new AbortController();
  private readonly t0 = preciseNow();
  private readonly statusFilter: string;
  private readonly resultFilter: string;
  private readonly contract: TopicContract;

  constructor(private readonly deps: SeedPlayerDeps) {
    this.statusFilter = seedStatusFilter(deps.root);
    this.resultFilter = seedResultTopic(deps.root, '+');
    this.contract = new TopicContract({ seedRoot: deps.root });
  }

  interrupt(): void {
    this.abort.abort();
  }

  async run(file: string, instructions: readonly SeedInstruction[]): Promise<SeedReport> {
    const { mqtt, root } = this.deps;
    mqtt.on('message', this.onMessage);
    // Subscribing now delivers the retained statuses flagged as such: that is how stale ones are told apart.
    await mqtt.subscribeAsync({ [this.statusFilter]: { qos: 1 }, [this.resultFilter]: { qos: 1 } });
    const done: InstructionResult[] = instructions.map((i) => ({ line: i.lineNo, text: i.text, status: 'skipped', startedAt: null, endedAt: null, detail: null }));
    let failed = false;
    for (const [n, ins] of instructions.entries()) {
      if (failed || this.abort.signal.aborted) break;
      const result = done[n]!;
      result.startedAt = preciseNow();
      this.deps.progress(`${this.stamp()} ${ins.text}`);
      const error = await this.execute(ins, result);
      Object.assign(result, { endedAt: preciseNow(), status: error ? 'failed' : 'ok', detail: error ?? result.detail });
      if (error) {
        this.deps.progress(`${this.stamp()}   ✘ ${error}`);
        failed = true;
      }
    }
    for (const { ins, name, path, r } of this.receiving) {
      if (failed || this.abort.signal.aborted) r.close();
      const outcome = await r.done.then((v) => `received ${name} → ${path} (${v.bytes} bytes)`, (err: Error) => err);
      if (outcome instanceof Error) Object.assign(ins, { status: 'failed', detail: outcome.message });
      else ins.detail = outcome;
      this.deps.progress(`${this.stamp()} ${outcome instanceof Error ? `✘ ${outcome.message}` : outcome}`);
      failed ||= outcome instanceof Error;
    }
    if (this.abort.signal.aborted) await this.stopNodes();
    mqtt.off('message', this.onMessage);
    const status = this.abort.signal.aborted ? 'cancelled' : failed ? 'failed' : 'ok';
    return { v: 1, format: 'seed', file, root, status, startedAt: this.t0, endedAt: preciseNow(), instructions: done, results: this.results };
  }

  /** Returns an error message, or null when the instruction succeeded. */
  private async execute(ins: SeedInstruction, result: InstructionResult): Promise<string | null> {
    switch (ins.verb) {
      case 'SEND':
        this.sentTo.add(ins.node);
        await this.deps.mqtt.publishAsync(seedCommandTopic(this.deps.root, ins.node), ins.message, { qos: 1 });
        return null;
      case 'WAIT':
        return sleep(ins.seconds * 1000, null, { signal: this.abort.signal }).catch(() => 'interrupted');
      case 'WAITFOR':
        return this.waitFor(ins.node, ins.status, ins.timeoutSeconds !== null ? ins.timeoutSeconds * 1000 : this.deps.waitforTimeoutMs);
      case 'RECEIVE':
        try {
          const path = join(this.deps.outDir, ins.file);
          this.receiving.push({ ins: result, name: ins.file, path, r: await receiveOnce(ins.port, path, this.deps.receiveTimeoutMs) });
          return null;
        } catch (err) {
          return `cannot listen on port ${ins.port}: ${(err as Error).message}`;
        }
    }
  }

  private waitFor(node: string, status: string, timeoutMs: number): Promise<string | null> {
    return new Promise((resolve) => {
      const finish = (outcome: string | null) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        this.abort.signal.removeEventListener('abort', onAbort);
        resolve(outcome);
      };
      const check = () => {
        const verdict = this.book.check(node, status);
        if (verdict.state === 'met') finish(null);
        else if (verdict.state === 'failed') finish(`WAITFOR ${node} ${status}: ${verdict.reason}`);
      };
      const onAbort = () => finish('interrupted');
      const timer = setTimeout(
        () => finish(`WAITFOR ${node} ${status}: timed out after ${timeoutMs / 1000} s (latest status: ${this.book.latest(node) ?? 'none'})`),
        timeoutMs,
      );
      this.waiters.add(check);
      this.abort.signal.addEventListener('abort', onAbort, { once: true });
      check();
    });
  }

  private readonly onMessage = (topic: string, payload: Buffer, packet: { retain: boolean }) => {
    const found = this.contract.lookup(topic);
    if (!found) return;
    const node = found.params.agent!;
    if (found.spec.name === 'seed.status') {
      this.book.record(node, payload.toString('utf8'), packet.retain);
      for (const check of [...this.waiters]) check();
    } else if (found.spec.name === 'seed.result') {
      const r = decode(NodeResult, payload);
      if (!r.ok) return;
      if (r.value.phase === 'finished') this.results.push(r.value);
      const how = r.value.phase === 'started' ? 'started' : `${r.value.outcome}${r.value.error ? ` (${r.value.error})` : ''}`;
      this.deps.progress(`${this.stamp()}   ${node}: ${r.value.stepId} ${how}`);
    }
  };

  private async stopNodes(): Promise<void> {
    for (const node of this.sentTo) {
      this.deps.progress(`${this.stamp()} interrupted: SEND ${node} STOP`);
      await this.deps.mqtt.publishAsync(seedCommandTopic(this.deps.root, node), 'STOP', { qos: 1 });
    }
  }

  private stamp(): string {
    return `[+${((preciseNow() - this.t0) / 1000).toFixed(3)}s]`;
  }
}
