import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['@baton/source'] },
  ssr: { resolve: { conditions: ['@baton/source'] } },
  test: {
    name: 'backend-etcd',
    include: ['test/**/*.test.ts'],
    // Each file starts its own etcd server; the suites measure TTLs of about a second, so these files run after
    // the projects that share two workers (the root config), two backend files at a time, never beside them.
    sequence: { groupOrder: 1 },
  },
});
