import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allChecks } from './checks.mjs';
import { assertTools, runCheck } from './spin.mjs';
import { formatTable } from './verify.mjs';

// `npm run verify`: SPIN on spec/baton.pml, spec/buckets.pml and spec/semaphore.pml. The faithful models must keep every property at every bounded size;
// each planted bug must produce a counterexample of the property it breaks (shortest, by breadth-first
// search); with the lock broken, the fences alone must still keep every other property; the documented
// finding must still be there (if it disappears, the code or the model changed: update docs/verification.md).
// Minutes on two cores, so not part of `npm test`.

const checks = allChecks();
const results = new Map<string, Awaited<ReturnType<typeof runCheck>>>();

beforeAll(async () => {
  await assertTools();
});

afterAll(() => {
  const done = checks.flatMap((c) => results.get(c.id) ?? []);
  if (done.length > 0) process.stdout.write(`\n${formatTable(done)}\n`);
});

describe.concurrent('SPIN on spec/baton.pml, spec/buckets.pml and spec/semaphore.pml', () => {
  for (const check of checks) {
    it(`${check.id}: ${check.title}`, { timeout: 30 * 60_000 }, async () => {
      const result = await runCheck(check);
      results.set(check.id, result);
      const context = `${check.id}: ${result.trail.join('\n')}\n${result.report}`;
      expect(result.states, context).toBeGreaterThan(0);
      if ('pass' in check.expect) {
        expect(result.violated, context).toBeUndefined();
        expect(result.errors, context).toBe(0);
      } else {
        expect(result.violated, context).toBe(check.expect.fails);
        expect(result.trail.length, context).toBeGreaterThan(0);
        if (check.kind === 'liveness') expect(result.trail.join('\n')).toMatch(/cycle that repeats forever/);
      }
    });
  }
});
