import { defineProject } from 'vitest/config';

export default defineProject({
  test: { name: 'example-leader', include: ['test/**/*.test.mjs'], testTimeout: 120_000 },
});
