import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['@baton/source'] },
  ssr: { resolve: { conditions: ['@baton/source'] } },
  test: { name: 'e2e', include: ['**/*.test.ts'], exclude: ['**/node_modules/**'] },
});
