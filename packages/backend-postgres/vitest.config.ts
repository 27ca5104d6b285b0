import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['@baton/source'] },
  ssr: { resolve: { conditions: ['@baton/source'] } },
  // Starting PGlite takes seconds (WebAssembly) and the suites measure TTLs of about a second.
  test: {
    name: 'backend-postgres',
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Run after the projects that share two workers (the root config), never beside them: two backend files
    // at a time.
    sequence: { groupOrder: 1 },
  },
});
