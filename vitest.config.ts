import { defineConfig } from 'vitest/config';
import { UnfinishedFilesReporter } from './test/support/unfinished-files-reporter.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Two cores: one fork per core keeps integration tests with real sockets from starving.
    pool: 'forks',
    maxWorkers: 2,
    // The second names a file whose process died (vitest alone says "Worker exited unexpectedly").
    reporters: ['default', new UnfinishedFilesReporter()],
  },
});
