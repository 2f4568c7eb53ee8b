import { z } from 'zod';

/** A command as an argv array: never a shell string, so no message field can become code. */
export const Argv = z.array(z.string().min(1)).min(1, 'expected a non-empty argv array like ["systemctl", "restart", "web"]');
