import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Two cores: one fork per core keeps integration tests with real sockets from starving.
    pool: 'forks',
    maxWorkers: 2,
  },
});
