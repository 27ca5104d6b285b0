import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      'packages/*/vitest.config.ts',
      'test/vitest.config.ts',
      'spec/vitest.config.ts',
      'examples/*/vitest.config.ts',
      'bench/vitest.config.ts',
    ],
    reporters: ['default', './scripts/summary-reporter.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
