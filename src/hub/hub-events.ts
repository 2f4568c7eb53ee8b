import { EventEmitter } from 'node:events';

/** The parts of what the hub knows that the page and API show, each refetched as a whole when told. */
export const HUB_AREAS = ['agents', 'apps', 'rollouts', 'deliveries', 'playbooks', 'jobs', 'services', 'audit'] as const;
export type HubArea = (typeof HUB_AREAS)[number];
export type HubChange = { area: HubArea; id?: string };

/**
 * Notices that something the API shows changed: whoever changes a read model calls `changed`,
 * the live stream (GET /api/v1/events) forwards them. A notice carries no data, only what to
 * fetch again, so a listener that misses one loses nothing but a refresh.
 */
export class HubEvents extends EventEmitter<{ changed: [HubChange] }> {
  constructor() {
    super();
    // One listener per open stream; their number is bounded by the stream route, not here.
    this.setMaxListeners(0);
  }

  changed(area: HubArea, id?: string): void {
    this.emit('changed', id === undefined ? { area } : { area, id });
  }
}
