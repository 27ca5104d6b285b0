import { fileURLToPath } from 'node:url';
import { defineProject } from 'vitest/config';

// `npm test` runs the trace check's tests only (milliseconds). The SPIN checks take minutes: `npm run verify`
// runs them (vitest.verify.config.ts).
export default defineProject({
  root: fileURLToPath(new URL('.', import.meta.url)),
  test: { name: 'spec', include: ['trace-check.test.ts'] },
});
