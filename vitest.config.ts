import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests start brokers, git repos and agent processes: give them room, not retries.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: true,
    // Three at once took the suite from 543 s to 435 s here, but on a clean CI machine each of
    // three runs then lost one test to load: two files, as the machine has cores.
    maxWorkers: 2,
  },
});
