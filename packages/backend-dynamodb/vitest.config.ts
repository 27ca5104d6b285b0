import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['@baton/source'] },
  ssr: { resolve: { conditions: ['@baton/source'] } },
  test: {
    name: 'backend-dynamodb',
    include: ['test/**/*.test.ts'],
    // dynalite runs in the test's own event loop and the fault tests measure leases of about a second: run
    // one file at a time, after the projects that share two workers (the root config).
    fileParallelism: false,
    sequence: { groupOrder: 1 },
  },
});
