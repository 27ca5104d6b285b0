import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// `npm run verify`: the SPIN checks of verify.test.ts, two at a time (one per core).
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  test: {
    name: 'verify',
    include: ['verify.test.ts'],
    maxConcurrency: 2,
    testTimeout: 30 * 60_000,
    hookTimeout: 60_000,
  },
});
