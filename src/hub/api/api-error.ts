import type { Response } from 'express';
import type { ServicesErrorCode } from '../../shared/contract/services-engine-messages.js';

/** A refusal of the HTTP API: its status and a short code beside the one-line error. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The REST status of each refusal code of the services engine. */
export const SERVICES_STATUS: Record<ServicesErrorCode, number> = { invalid: 400, 'not-found': 404, exists: 409, unavailable: 503 };

/** Every error answer of the API: `{error, code}`, the error one line a person can act on. */
export function sendError(res: Response, status: number, code: string, error: string): void {
  res.status(status).json({ error, code });
}
