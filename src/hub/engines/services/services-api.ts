import type { Page, Paged, ServerView, ServiceCreate, ServiceLogsView, ServicesErrorCode, ServiceStatusName, ServiceView } from '../../../shared/contract/services-engine-messages.js';
import type { z } from 'zod';

/** A refused request, with the code its REST status and CLI exit follow from. */
export class ServicesError extends Error {
  override name = 'ServicesError';
  constructor(
    readonly code: ServicesErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * What operators can do with services, whatever the door: the MQTT request topic
 * (`pushfleet services …`) and the REST API (`/api/v1/services…`) are thin adapters over it.
 * Every method rejects with a ServicesError when it refuses; `by` names who asked, for the log.
 */
export interface ServicesApi {
  /** Resolves once the service is stored (durable); it is placed as soon as an agent fits. */
  add(service: ServiceCreate, by: string): Promise<ServiceView>;
  /** Cancels it in any state; resolves with its view (stopping, or cancelled when nothing ran). */
  remove(name: string, by: string): Promise<ServiceView>;
  list(page: Page, status?: z.infer<typeof ServiceStatusName>): Promise<Paged<ServiceView>>;
  show(name: string): Promise<ServiceView>;
  servers(page: Page): Promise<Paged<ServerView>>;
  /** The output tail of its current copy, or of `generation` if given (as its agent last published it). */
  logs(name: string, generation?: number): Promise<ServiceLogsView>;
}
