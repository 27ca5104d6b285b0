import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['@baton/source'] },
  ssr: { resolve: { conditions: ['@baton/source'] } },
  test: {
    name: 'backend-dynamodb',
    include: ['test/**/*.test.ts'],
    // dynalite runs in the test's own event loop and the fault tests measure leases of about a second: these
    // files run after the projects that share two workers (the root config), two backend files at a time.
    sequence: { groupOrder: 1 },
  },
});
