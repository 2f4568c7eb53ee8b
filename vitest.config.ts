import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests start brokers, git repos and agent processes: give them room, not retries.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: true,
    // Most of a test's time is spent waiting (leases, timeouts, child processes), not computing:
    // three files at once on two cores took the suite from 543 s to 435 s with no failure.
    maxWorkers: 3,
  },
});
