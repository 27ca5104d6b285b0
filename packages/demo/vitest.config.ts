import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['@baton/source'] },
  ssr: { resolve: { conditions: ['@baton/source'] } },
  // The tests run the built binary as child processes against embedded servers: generous bounds.
  test: { name: 'demo', include: ['test/**/*.test.ts'], testTimeout: 90_000, hookTimeout: 120_000 },
});
