import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['@baton/source'] },
  ssr: { resolve: { conditions: ['@baton/source'] } },
  test: {
    name: 'backend-consul',
    include: ['test/**/*.test.ts'],
    // The test server runs in the test's own event loop and the tests measure TTLs of about a second, so these
    // files run after the projects that share two workers (the root config), never beside them: two backend
    // files at a time, each in its own process on its own core.
    sequence: { groupOrder: 1 },
  },
});
