import { RunEvent, RunRequest } from '../../shared/contract/orchestrator-messages.js';
import { decode, HubStatus, PushMessage, type AppState } from '../../shared/messages.js';
import { headTopic } from '../../shared/topics.js';
import { TopicContract } from '../../shared/contract/topic-table.js';
import type { Delivery, Engine, EngineContext } from '../engines/engine.js';
import { TableBound } from '../engines/table-bound.js';
import type { HubArea } from '../hub-events.js';
import { DeliveryView, type DeliveryRecord } from './delivery-view.js';
import { FleetView } from './fleet-view.js';
import { HeadView } from './head-view.js';
import { PlaybookRunsView } from './playbook-runs-view.js';

// These topics do not depend on the semaphore prefix or seed root: the default table knows them.
const contract = new TopicContract();
const FED_BY = ['agent.status', 'agent.heartbeat', 'agent.app', 'hub.status', 'orchestrator.run-request', 'orchestrator.run-events'];
const FILTERS = FED_BY.map((name) => contract.specs.find((s) => s.name === name)!.pattern.filter());

/** How much the read models keep: past these, new agents and apps are ignored and the oldest heads, deliveries and runs forgotten. */
export const VIEW_LIMITS = { agents: 100_000, appsPerAgent: 1000, heads: 100_000, deliveries: 1000, playbookRuns: 200 };
export type ViewLimits = typeof VIEW_LIMITS;

/** Tells whoever follows the hub's state (the page's live updates) that an area changed. */
export type Changed = (area: HubArea, id?: string) => void;

/** The heads the hub kept (HeadStore): each topic and the push message inside its signed envelope. */
export type StoredHeads = { list(): { topic: string; payload: string }[] };

/**
 * The REST API's read models, fed by the hub's own MQTT subscription like any engine: the
 * agents' retained status, heartbeats and app states, the hub's status and the orchestrator's
 * runs. Heads come from the hub itself (its stored heads at start, then each push it publishes:
 * `headPublished`), not from their echo, which would cost a signature check and a 7 KB decode per
 * push; webhook deliveries come from the webhook route (`delivered`). Each change is announced
 * through `changed`. Rollouts and job runs are read from their engines' stores.
 */
export class ViewsEngine implements Engine {
  readonly name = 'views';
  readonly subscriptions = FILTERS;
  readonly fleet: FleetView;
  readonly heads: HeadView;
  readonly deliveries: DeliveryView;
  readonly playbooks: PlaybookRunsView;
  /** The hub's own retained status, as agents and `pushfleet status` read it. */
  hub: HubStatus | undefined;

  constructor(
    private readonly ctx: EngineContext,
    private readonly changed: Changed,
    private readonly storedHeads: StoredHeads = { list: () => [] },
    /** Each app state taken (undefined: cleared), decoded once for every reader (the update counter of /metrics). */
    private readonly onAppState?: (agent: string, app: string, state: AppState | undefined, retained: boolean) => void,
    limits: ViewLimits = VIEW_LIMITS,
  ) {
    const bounds = {
      agents: new TableBound(ctx, 'API agents', 'VIEW_LIMITS.agents in src/hub/views/views-engine.ts', limits.agents, 'new agents not shown'),
      apps: new TableBound(ctx, 'API apps of one agent', 'VIEW_LIMITS.appsPerAgent in src/hub/views/views-engine.ts', limits.appsPerAgent, 'new apps not shown'),
    };
    this.fleet = new FleetView((table, size, entry) => bounds[table].admits(size, entry));
    this.heads = new HeadView(limits.heads);
    this.deliveries = new DeliveryView(limits.deliveries);
    this.playbooks = new PlaybookRunsView(limits.playbookRuns, ctx.clock.now);
  }

  async start(): Promise<void> {
    for (const head of this.storedHeads.list()) {
      const d = decode(PushMessage, head.payload);
      if (d.ok) this.heads.take(head.topic, d.value);
    }
  }

  async stop(): Promise<void> {}

  handle(topic: string, payload: Buffer, delivery?: Delivery): void {
    const found = contract.lookup(topic);
    const kind = found?.spec.name;
    if (kind === 'hub.status') {
      const d = decode(HubStatus, payload);
      if (d.ok) this.hub = d.value;
      return;
    }
    if (kind === 'orchestrator.run-request') return this.onRunRequest(payload);
    if (kind === 'orchestrator.run-events') return this.onRunEvent(payload);
    const before = kind === 'agent.app' ? this.fleet.app(found!.params.agent!, found!.params.app!) : undefined;
    const msg = this.fleet.take(topic, payload);
    if (!msg) return;
    this.changed('agents', msg.agent);
    if (msg.kind !== 'app') return;
    this.changed('apps', msg.app);
    // Told only what was taken: a cleared app, or a state that decoded (a malformed one left the old in place).
    const after = this.fleet.app(msg.agent, msg.app!);
    if (after !== before) this.onAppState?.(msg.agent, msg.app!, after, delivery?.retained === true);
  }

  /** One answer of the webhook path (route.ts), kept among the newest. */
  delivered(record: DeliveryRecord): void {
    this.deliveries.add(record);
    this.changed('deliveries', record.delivery ?? undefined);
  }

  /** A push the hub published, with its head, once the broker has both (push-publisher.ts). */
  headPublished(push: PushMessage): void {
    this.heads.take(headTopic(push.repo, push.ref), push);
    this.changed('apps');
  }

  private onRunRequest(payload: Buffer): void {
    const d = decode(RunRequest, payload);
    if (!d.ok) return;
    this.playbooks.request(d.value);
    this.changed('playbooks', d.value.runId);
  }

  private onRunEvent(payload: Buffer): void {
    const d = decode(RunEvent, payload);
    if (!d.ok) return;
    this.playbooks.event(d.value);
    this.changed('playbooks', d.value.runId);
  }
}
