import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['@baton/source'] },
  ssr: { resolve: { conditions: ['@baton/source'] } },
  test: {
    name: 'backend-consul',
    include: ['test/**/*.test.ts'],
    // The test server runs in the test's own event loop and the tests measure TTLs of about a second: files
    // running side by side on a small machine starve each other's renewals.
    fileParallelism: false,
    // Run after the projects that share two workers (the root config), never beside them.
    sequence: { groupOrder: 1 },
  },
});
