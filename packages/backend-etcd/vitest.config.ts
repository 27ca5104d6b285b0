import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['@baton/source'] },
  ssr: { resolve: { conditions: ['@baton/source'] } },
  test: {
    name: 'backend-etcd',
    include: ['test/**/*.test.ts'],
    // Each file starts its own etcd server; the suites measure TTLs of about a second, and files running
    // side by side on a small machine starve each other's renewals.
    fileParallelism: false,
    // Run after the projects that share two workers (the root config), never beside them.
    sequence: { groupOrder: 1 },
  },
});
