import type { Request, Response } from 'express';
import { callerOf } from './api-auth.js';
import { ApiError } from './api-error.js';

/** Who asked, as engines record it (`by`): the token's account and the address it called from. */
export const requestedBy = (req: Request, res: Response): string => `${callerOf(res).name}@${req.socket.remoteAddress ?? 'unknown'}`;

/** A dependency of an area the hub may not have (an engine that is off): without it the route answers 503 saying which setting turns it on. */
export function present<T>(value: T | undefined, missing: string): T {
  if (value === undefined) throw new ApiError(503, 'unavailable', missing);
  return value;
}
