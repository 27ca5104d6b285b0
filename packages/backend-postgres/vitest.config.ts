import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['@baton/source'] },
  ssr: { resolve: { conditions: ['@baton/source'] } },
  // Starting PGlite takes seconds (WebAssembly); the suites measure TTLs of about a second, and files
  // running side by side on a small machine starve each other's renewals.
  test: {
    name: 'backend-postgres',
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    // Run after the projects that share two workers (the root config), never beside them.
    sequence: { groupOrder: 1 },
  },
});
