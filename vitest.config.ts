import { defineConfig } from 'vitest/config';

export default defineConfig({
  // The benchmarks' smoke test (every benchmark end to end at toy size, about a minute) runs on its own:
  // `npm run test:bench`, which CI runs after `npm test`.
  test: {
    projects: [
      'packages/*/vitest.config.ts',
      'test/vitest.config.ts',
      'spec/vitest.config.ts',
      'examples/*/vitest.config.ts',
    ],
    reporters: ['default', './scripts/summary-reporter.ts'],
    // Two files at a time on this 2-core machine (vitest's default is cores − 1). The lock backends' projects
    // measure leases of about a second, so they run in a group of their own afterwards, two files at a time as
    // well, never beside the projects above.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
