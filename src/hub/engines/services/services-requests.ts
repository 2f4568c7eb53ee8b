import { z } from 'zod';
import { ServicesRequest, servicesReplyTopic, type ServicesReply } from '../../../shared/contract/services-engine-messages.js';
import { decode, SCHEMA_VERSION } from '../../../shared/messages.js';
import { publishAndForget, type EngineContext } from '../engine.js';
import { ServicesError, type ServicesApi } from './services-api.js';

/** Just enough of a request to answer it. */
const Addressed = z.object({ requestId: ServicesRequest.options[0].shape.requestId });

/** Answers one operator request on `pushfleet/services/request` (`pushfleet services …`) through the ServicesApi. */
export async function answerServicesRequest(api: ServicesApi, ctx: Pick<EngineContext, 'publisher' | 'log'>, payload: Buffer): Promise<void> {
  const d = decode(ServicesRequest, payload);
  if (!d.ok) {
    // Answered when it says where (a bad name, an unknown field); without a valid requestId there is nowhere to.
    const id = decode(Addressed, payload);
    ctx.log.warn({ engine: 'services', error: d.error }, 'services: refused malformed request');
    if (id.ok) publishAndForget(ctx, 'services', servicesReplyTopic(id.value.requestId), JSON.stringify({ v: SCHEMA_VERSION, requestId: id.value.requestId, ok: false, error: d.error, code: 'invalid' } satisfies ServicesReply));
    return;
  }
  const req = d.value;
  let reply: ServicesReply;
  try {
    reply = { v: SCHEMA_VERSION, requestId: req.requestId, ok: true, error: null, ...(await carryOut(api, req)) };
  } catch (err) {
    if (!(err instanceof ServicesError)) ctx.log.error({ engine: 'services', op: req.op, err }, 'services: request failed');
    const code = err instanceof ServicesError ? err.code : 'unavailable';
    reply = { v: SCHEMA_VERSION, requestId: req.requestId, ok: false, error: (err as Error).message, code };
  }
  publishAndForget(ctx, 'services', servicesReplyTopic(req.requestId), JSON.stringify(reply));
}

async function carryOut(api: ServicesApi, req: ServicesRequest): Promise<Partial<ServicesReply>> {
  switch (req.op) {
    case 'add':
      return { service: await api.add(req.service, req.by) };
    case 'rm':
      return { service: await api.remove(req.name, req.by) };
    case 'ls':
      return { services: await api.list(req.page, req.status) };
    case 'show':
      return { service: await api.show(req.name) };
    case 'logs':
      return { logs: await api.logs(req.name, req.generation) };
    case 'servers':
      return { servers: await api.servers(req.page) };
  }
}
