import { z } from 'zod';
import { regexSource } from '../../../shared/config-file.js';

/**
 * The semaphore engine's settings (`engines.semaphore` in the hub config). The keys mirror
 * coordinosaur's config.py (MAX_CONCURRENT_JOBS → maxConcurrentJobs, and so on) so a seed config
 * translates one to one.
 */
const Quota = z
  .object({
    name: z.string().min(1),
    /** Grants allowed per window; 0 or less means unlimited, as in the seed. */
    limit: z.number().int(),
    /** The seed's logging hint ("v", "q"); accepted so seed configs load, not used. */
    log: z.string().optional(),
  })
  .strict();

/** `{seconds: {name, limit}}`: one sliding window per key, the key its length in seconds. */
export const QuotasPerInterval = z.record(z.string().regex(/^[1-9][0-9]*$/, 'expected a whole number of seconds'), Quota);

const ChannelOverrides = z
  .object({
    maxConcurrentJobs: z.number().int().nonnegative().optional(),
    timeoutOffset: z.number().nonnegative().optional(),
    quotasPerInterval: QuotasPerInterval.optional(),
  })
  .strict();

/** A topic prefix of one or more levels, without wildcards or leading/trailing slash. */
const Prefix = z.string().regex(/^[^/+#\s]+(?:\/[^/+#\s]+)*$/, 'expected topic levels without wildcards or leading/trailing "/"');

export const SemaphoreConfig = z
  .object({
    enabled: z.boolean().default(true),
    /** Topics are `{prefix}/{channel}/…`, also served with a leading "/" as the seed's README writes them. */
    prefix: Prefix.default('coordinosaur'),
    maxConcurrentJobs: z.number().int().nonnegative().default(1),
    /** Seconds added to each job's own timeout before its slot is taken back. */
    timeoutOffset: z.number().nonnegative().default(0),
    quotasPerInterval: QuotasPerInterval.default({}),
    /**
     * Per-channel options by regex, matched at the start of the channel name (Python's re.match);
     * every matching pattern applies in file order, later keys winning.
     */
    channels: z.record(regexSource(), ChannelOverrides).default({}),
    /** How often at most waiters are told their new queue position (`queued/{uid}`); 0 turns it off. */
    positionUpdateMs: z.number().int().nonnegative().default(1000),
    /**
     * How long a retained `expired/{uid}` stays on the broker (a new register of the uid clears it
     * sooner), and how long a late copy of an ended registration's register is recognised.
     */
    retainExpiredSeconds: z.number().int().positive().default(86_400),
    /**
     * Channels holding jobs at once, counted apart for the channels another engine claims
     * (rollouts) and the rest, so a flood of one kind cannot close the other; also the channels
     * with a concurrency override. A register opening one more is refused (`table-full`).
     */
    maxChannels: z.number().int().positive().default(10_000),
    /** Jobs working or waiting in one channel; a register past it is refused (`table-full`). */
    maxJobsPerChannel: z.number().int().positive().default(10_000),
    /** Ended jobs kept for retainExpiredSeconds; past it the oldest is forgotten early. */
    maxEndedJobs: z.number().int().positive().default(100_000),
  })
  .strict();
export type SemaphoreConfig = z.infer<typeof SemaphoreConfig>;

export type QuotaRule = { seconds: number; name: string; limit: number };
export type ChannelOptions = { maxConcurrentJobs: number; timeoutOffset: number; quotas: QuotaRule[] };

/** Resolves a channel's options: defaults, then every matching pattern in order. */
export function channelOptionsResolver(config: SemaphoreConfig): (channel: string) => ChannelOptions {
  const patterns = Object.entries(config.channels).map(([p, o]) => ({ re: new RegExp(`^(?:${p})`), o }));
  return (channel) => {
    let max = config.maxConcurrentJobs;
    let offset = config.timeoutOffset;
    let quotas = config.quotasPerInterval;
    for (const { re, o } of patterns) {
      if (!re.test(channel)) continue;
      max = o.maxConcurrentJobs ?? max;
      offset = o.timeoutOffset ?? offset;
      quotas = o.quotasPerInterval ?? quotas;
    }
    const rules = Object.entries(quotas)
      .map(([seconds, q]) => ({ seconds: Number(seconds), name: q.name, limit: q.limit }))
      .filter((q) => q.limit > 0);
    return { maxConcurrentJobs: max, timeoutOffset: offset, quotas: rules };
  };
}
