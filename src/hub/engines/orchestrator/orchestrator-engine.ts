import { TopicContract } from '../../../shared/contract/topic-table.js';
import { AgentStatus, decode, SCHEMA_VERSION } from '../../../shared/messages.js';
import { NodeInfo, NodeResult, OrchestratorName, RunCancel, RunRequest, TimeRequest, type RunEvent, type TimeReply } from '../../../shared/contract/orchestrator-messages.js';
import {
  AGENT_STATUS_ALL,
  NODE_INFO_ALL,
  NODE_RESULT_ALL,
  RUN_CANCEL_ALL,
  RUN_REQUEST_ALL,
  runEventsTopic,
  TIME_REQUEST,
  timeReplyTopic,
} from '../../../shared/topics.js';
import { publishAndForget, type Engine, type EngineContext } from '../engine.js';
import { TableBound } from '../table-bound.js';
import type { OrchestratorConfig } from './config.js';
import { Fleet } from './fleet.js';
import { parseNativePlaybook } from './native-playbook.js';
import { preciseNow } from './precise-time.js';
import { RunSession } from './run-session.js';

// The orchestrator's topics do not depend on the semaphore prefix or seed root.
const contract = new TopicContract();

/**
 * The orchestrator engine: the hub's clock for agents' NTP-style pings, and the runner of native
 * playbooks that `pushfleet play` submits. Seed playbooks never reach it: `play` drives those
 * itself, as the seed's orchestrate.sh did, because RECEIVE listens on the machine running it.
 */
export class OrchestratorEngine implements Engine {
  readonly name = 'orchestrator';
  readonly subscriptions = [TIME_REQUEST, RUN_REQUEST_ALL, RUN_CANCEL_ALL, AGENT_STATUS_ALL, NODE_INFO_ALL, NODE_RESULT_ALL];
  private readonly fleet: Fleet;
  private readonly runs = new Map<string, RunSession>();
  private readonly runBound: TableBound;

  constructor(
    private readonly ctx: EngineContext,
    private readonly config: OrchestratorConfig,
    private readonly now: () => number = preciseNow,
  ) {
    const agents = new TableBound(ctx, 'orchestrator agents followed', 'engines.orchestrator.maxAgents', config.maxAgents, 'new agents ignored');
    this.fleet = new Fleet((size, agent) => agents.admits(size, agent));
    this.runBound = new TableBound(ctx, 'orchestrator runs under way', 'engines.orchestrator.maxRuns', config.maxRuns);
  }

  async start(): Promise<void> {}

  handle(topic: string, payload: Buffer): void {
    // Time pings first, and t1 before anything else, so hub-side work stays out of the RTT.
    if (topic === TIME_REQUEST) return this.onTimeRequest(this.now(), payload);
    const found = contract.lookup(topic);
    if (!found) return;
    const { agent, run } = found.params;
    switch (found.spec.name) {
      case 'agent.status':
        return this.onAgentStatus(agent!, payload);
      case 'orchestrator.node-info':
        return this.onNodeInfo(agent!, payload);
      case 'orchestrator.node-result':
        return this.onResult(topic, payload);
      case 'orchestrator.run-request':
        return this.onRunRequest(run!, payload);
      case 'orchestrator.run-cancel':
        return this.onCancel(run!, payload);
    }
  }

  async stop(): Promise<void> {
    for (const run of [...this.runs.values()]) run.shutdown();
  }

  private publish(topic: string, message: object, qos: 0 | 1 = 1): void {
    publishAndForget(this.ctx, this.name, topic, JSON.stringify(message), { qos });
  }

  private onTimeRequest(t1: number, payload: Buffer): void {
    const req = decode(TimeRequest, payload);
    if (!req.ok) return void this.ctx.log.warn({ error: req.error }, 'ignored malformed time request');
    const reply: TimeReply = { v: SCHEMA_VERSION, seq: req.value.seq, t0: req.value.t0, t1, t2: this.now() };
    this.publish(timeReplyTopic(req.value.agent), reply, 0);
  }

  private onAgentStatus(agent: string, payload: Buffer): void {
    const status = payload.length ? decode(AgentStatus, payload) : null;
    const online = status?.ok === true && status.value.state === 'online';
    this.fleet.setStatus(agent, online, status?.ok ? status.value.labels : {});
    if (!online) for (const run of this.runs.values()) run.nodeLost(agent);
  }

  private onNodeInfo(agent: string, payload: Buffer): void {
    const info = payload.length ? decode(NodeInfo, payload) : null;
    if (info && !info.ok) this.ctx.log.warn({ agent, error: info.error }, 'ignored malformed node info');
    this.fleet.setInfo(agent, info?.ok ? info.value : null);
  }

  private onResult(topic: string, payload: Buffer): void {
    const result = decode(NodeResult, payload);
    if (!result.ok) return void this.ctx.log.warn({ topic, error: result.error }, 'ignored malformed node result');
    this.runs.get(result.value.runId)?.onResult(result.value);
  }

  private onRunRequest(runId: string, payload: Buffer): void {
    const req = decode(RunRequest, payload);
    if (!req.ok || req.value.runId !== runId) {
      const error = req.ok ? 'runId differs from the topic' : req.error;
      return this.reject(runId, `malformed run request: ${error}`);
    }
    if (this.runs.has(runId)) return; // a QoS 1 redelivery
    if (!this.runBound.admits(this.runs.size, runId)) return this.reject(runId, this.runBound.full);
    const parsed = parseNativePlaybook(req.value.playbook, req.value.file);
    if (!parsed.ok) return this.reject(runId, `invalid playbook ${req.value.file}: ${parsed.errors.join('; ')}`);
    const session = new RunSession(
      {
        publish: (topic, message) => this.publish(topic, message),
        clock: this.ctx.clock,
        now: this.now,
        fleet: this.fleet,
        startMarginMs: this.config.startMargin * 1000,
        cancelGraceMs: this.config.cancelGrace * 1000,
        onFinished: (id) => {
          this.runs.delete(id);
          this.ctx.log.info({ runId: id }, 'orchestrator run finished');
        },
      },
      runId,
      parsed.playbook,
    );
    this.runs.set(runId, session);
    this.ctx.log.info({ runId, playbook: parsed.playbook.name, steps: parsed.playbook.steps.length }, 'orchestrator run started');
    session.start();
  }

  private onCancel(runId: string, payload: Buffer): void {
    const cancel = decode(RunCancel, payload);
    if (!cancel.ok) return void this.ctx.log.warn({ runId, error: cancel.error }, 'ignored malformed cancel');
    this.ctx.log.info({ runId, reason: cancel.value.reason }, 'orchestrator run cancelled');
    this.runs.get(runId)?.cancel();
  }

  private reject(runId: string, error: string): void {
    const event: RunEvent = { v: SCHEMA_VERSION, type: 'rejected', runId, error };
    if (OrchestratorName.safeParse(runId).success) this.publish(runEventsTopic(runId), event);
    this.ctx.log.warn({ runId, error }, 'orchestrator run rejected');
  }
}
