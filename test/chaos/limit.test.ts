import { describe, expect, it } from 'vitest';
import { FAULT_KINDS } from './faults.mjs';
import { runChaos } from './harness.mjs';
import { randomSeed } from './random.mjs';

// The kind-limit invariant on a real run with a planted fault: the workers are started with
// `--limit limited=3` while the checker holds them to 2. Every task is of the limited kind and runs 1.5 to
// 2 s, far more than 3 permits can serve, so the third permit is in use for most of the run. No faults: the
// invariant must catch the misconfigured fleet on its own. CHAOS_SEED=<seed> replays a run.

const env = process.env;
const seed = env.CHAOS_SEED ? Number(env.CHAOS_SEED) : randomSeed();
const log = env.CHAOS_VERBOSE ? (line: string) => process.stdout.write(`${line}\n`) : undefined;
const leaseBy = seed % 2 === 0 ? 'task' : 'bucket';

describe('chaos checker on a real run with a planted fault', () => {
  it(`catches workers that run a limited kind one over its limit (${leaseBy} leases)`, {
    timeout: 120_000,
  }, async () => {
    const result = await runChaos({
      backend: 'consul',
      leaseBy,
      seed,
      faultMs: 4_000,
      drainMs: 40_000,
      workers: 2,
      tasks: 16,
      taskMs: { min: 1_500, max: 2_000 },
      faultWeights: Object.fromEntries(Object.keys(FAULT_KINDS).map((kind) => [kind, 0])),
      limit: { kind: 'limited', n: 2, share: 1 },
      limitOffset: 1,
      log,
    });
    const context = `seed ${result.seed} (${leaseBy} leases), logs in ${result.outDir}\n${result.report}`;
    expect(result.ok, context).toBe(false);
    expect(result.metrics.limit?.maxConcurrentValid, context).toBe(3);
    expect(result.metrics.limit?.slotsUsed, context).toBe(3);
    expect(result.violations.length, context).toBeGreaterThan(0);
    for (const v of result.violations) {
      expect(v.invariant, context).toBe('kind-limit');
      expect(v.message, context).toMatch(/^3 handlers of limited ran under valid permits at .*, limit 2: /);
    }
    // Nothing else broke: every task done exactly once, nothing lost.
    expect(result.metrics.lost, context).toBe(0);
    expect(result.metrics.done, context).toBe(16);
    expect(result.metrics.limit?.executions, context).toBe(16);
    expect(result.crashes, context).toEqual([]);
  });
});
