import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { lockBackends } from './support/backends.js';

it('runs the worker end to end on every landed lock backend', () => {
  for (const backend of lockBackends) {
    const file = fileURLToPath(new URL(`./worker-${backend.name}.test.ts`, import.meta.url));
    expect(existsSync(file), `test/e2e/worker-${backend.name}.test.ts is missing`).toBe(true);
  }
});
