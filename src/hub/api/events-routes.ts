import { Router, type Request, type Response } from 'express';
import { ApiError } from './api-error.js';
import { callerOf, type ApiAuth } from './api-auth.js';
import type { EventStreams, StreamSink } from './event-streams.js';
import { queryOf } from './request-parsing.js';
import { STREAM_TICKET_DEFAULTS, StreamTickets } from './stream-tickets.js';

export type EventsRoutesDeps = { auth: ApiAuth; streams?: EventStreams };

/**
 * `GET /api/v1/events` (server-sent events: `changed` with `{area, id?}`, see event-streams.ts)
 * and `POST /api/v1/events/tickets`. Mounted before the API's token check: a browser's
 * EventSource cannot send the token, so the stream also takes `?ticket=` from the POST (single
 * use, 30 s; stream-tickets.ts). Without a ticket it takes the token like any route.
 */
export function eventsRoutes(deps: EventsRoutesDeps): Router {
  const router = Router();
  const tickets = new StreamTickets({ ...STREAM_TICKET_DEFAULTS, now: Date.now });
  const viewer = deps.auth.require('viewer');
  router.post('/events/tickets', viewer, (req, res) => {
    queryOf(req, []);
    const caller = callerOf(res);
    res.status(201).json({ ...tickets.issue(caller), caller: { name: caller.name, role: caller.role } });
  });
  router.get(
    '/events',
    (req, res, next) => {
      const { ticket } = queryOf(req, ['ticket']);
      if (ticket === undefined) return viewer(req, res, next);
      const holder = tickets.redeem(ticket);
      if (!holder) {
        deps.auth.refused({ name: null, address: req.socket.remoteAddress ?? 'unknown', reason: 'stream ticket unknown, used or expired' });
        throw new ApiError(401, 'unauthorized', 'stream ticket unknown, used or expired: POST /api/v1/events/tickets with your token for a new one');
      }
      res.locals.caller = holder;
      next();
    },
    (req, res) => openStream(deps.streams, req, res),
  );
  return router;
}

const STREAM_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' };

function openStream(streams: EventStreams | undefined, req: Request, res: Response): void {
  if (!streams) throw new ApiError(503, 'unavailable', 'this hub runs no live stream');
  const sink: StreamSink = {
    write: (text) => {
      // At the first write, so a refused stream still answers an ordinary JSON error.
      if (!res.headersSent) res.writeHead(200, STREAM_HEADERS);
      res.write(text);
    },
    buffered: () => res.writableLength,
    end: () => res.end(),
  };
  const { name } = callerOf(res);
  const added = streams.add(sink, name);
  if (added !== 'added') {
    res.set('retry-after', '10');
    throw new ApiError(503, 'too-many-streams', added === 'full' ? `${streams.open} event streams are open on this hub, its limit: retry later` : `user "${name}" has as many event streams open as one account may: close another tab of the dashboard`);
  }
  // Notices are small and few: sent at once rather than held for a fuller packet.
  req.socket.setNoDelay(true);
  req.on('close', () => streams.remove(sink));
}
