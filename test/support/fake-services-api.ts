import type { MqttClient } from 'mqtt';
import { ServicesError, type ServicesApi } from '../../src/hub/engines/services/services-api.js';
import { SERVICES_REQUEST, servicesReplyTopic, ServicesRequest, type Page, type Paged, type ServerView, type ServiceCreate, type ServiceLogsView, type ServicesReply, type ServiceView } from '../../src/shared/contract/services-engine-messages.js';
import { decode, SCHEMA_VERSION } from '../../src/shared/messages.js';

/**
 * The services engine's interface in memory, for tests of its doors (REST, CLI): services are
 * queued when added and cancelled at once when removed, as the engine does with a service no
 * agent runs; servers and logs are what the test sets. Every call is recorded with its `by`.
 */
export class FakeServicesApi implements ServicesApi {
  readonly services = new Map<string, ServiceView>();
  readonly serverList: ServerView[] = [];
  readonly outputs = new Map<string, ServiceLogsView[]>();
  readonly calls: { op: string; by?: string; args: unknown[] }[] = [];
  /** When set, every call is refused with it (a store that is down). */
  failure: ServicesError | undefined;

  async add(service: ServiceCreate, by: string): Promise<ServiceView> {
    this.record('add', [service], by);
    if (this.services.has(service.name)) throw new ServicesError('exists', `service "${service.name}" exists; remove it first or pick another name`);
    const view: ServiceView = { ...service, status: 'queued', generation: 0, createdAt: new Date().toISOString(), history: [], reason: 'no agent offers it yet' };
    this.services.set(service.name, view);
    return view;
  }

  async remove(name: string, by: string): Promise<ServiceView> {
    this.record('remove', [name], by);
    const view = this.get(name);
    this.services.delete(name);
    return { ...view, status: 'cancelled' };
  }

  async list(page: Page, status?: ServiceView['status']): Promise<Paged<ServiceView>> {
    this.record('list', [page, status]);
    return paged([...this.services.values()].filter((s) => status === undefined || s.status === status), page);
  }

  async show(name: string): Promise<ServiceView> {
    this.record('show', [name]);
    return this.get(name);
  }

  async servers(page: Page): Promise<Paged<ServerView>> {
    this.record('servers', [page]);
    return paged(this.serverList, page);
  }

  async logs(name: string, generation?: number): Promise<ServiceLogsView> {
    this.record('logs', [name, generation]);
    const copies = this.outputs.get(this.get(name).name) ?? [];
    const found = generation === undefined ? copies.at(-1) : copies.find((c) => c.generation === generation);
    if (!found) throw new ServicesError('not-found', `service "${name}" has no output${generation === undefined ? '' : ` of generation ${generation}`}`);
    return found;
  }

  private get(name: string): ServiceView {
    const view = this.services.get(name);
    if (!view) throw new ServicesError('not-found', `no service "${name}"`);
    return view;
  }

  private record(op: string, args: unknown[], by?: string): void {
    this.calls.push({ op, args, ...(by !== undefined && { by }) });
    if (this.failure) throw this.failure;
  }
}

const paged = <T>(all: T[], { offset, limit }: Page): Paged<T> => ({ items: all.slice(offset, offset + limit), total: all.length, offset, limit });

/** Answers `pushfleet/services/request` from `api`, as the hub's engine does (for tests of the CLI); the requests it took are kept. */
export async function answerServicesRequests(client: MqttClient, api: ServicesApi): Promise<ServicesRequest[]> {
  const taken: ServicesRequest[] = [];
  client.on('message', (topic, payload) => {
    if (topic !== SERVICES_REQUEST) return;
    const req = decode(ServicesRequest, payload);
    if (!req.ok) return;
    taken.push(req.value);
    void answer(api, req.value).then((reply) => client.publishAsync(servicesReplyTopic(req.value.requestId), JSON.stringify({ v: SCHEMA_VERSION, requestId: req.value.requestId, ...reply }), { qos: 1 }));
  });
  await client.subscribeAsync(SERVICES_REQUEST, { qos: 1 });
  return taken;
}

async function answer(api: ServicesApi, req: ServicesRequest): Promise<Omit<ServicesReply, 'v' | 'requestId'>> {
  try {
    switch (req.op) {
      case 'add':
        return { ok: true, error: null, service: await api.add(req.service, req.by) };
      case 'rm':
        return { ok: true, error: null, service: await api.remove(req.name, req.by) };
      case 'ls':
        return { ok: true, error: null, services: await api.list(req.page, req.status) };
      case 'show':
        return { ok: true, error: null, service: await api.show(req.name) };
      case 'logs':
        return { ok: true, error: null, logs: await api.logs(req.name, req.generation) };
      case 'servers':
        return { ok: true, error: null, servers: await api.servers(req.page) };
    }
  } catch (err) {
    if (!(err instanceof ServicesError)) throw err;
    return { ok: false, error: err.message, code: err.code };
  }
}
