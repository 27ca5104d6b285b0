import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['@baton/source'] },
  ssr: { resolve: { conditions: ['@baton/source'] } },
  // Starting PGlite takes seconds (WebAssembly), more on a busy machine.
  test: {
    name: 'console',
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
