import { describe, expect, it } from 'vitest';
import { FAULT_KINDS, RESTARTABLE } from './faults.mjs';
import { runChaos } from './harness.mjs';
import { randomSeed } from './random.mjs';

// The short chaos variant of `npm test`: real `baton worker` processes (the built CLI) on PGlite (or
// DATABASE_URL), every kind of fault at least once, then the checker. A run prints its seed; replay it with
// CHAOS_SEED=<seed> (or `npm run chaos -- --backend <b> [--lease-by bucket] --seed <seed> --minutes 0.6
// --workers 3`).
//
// Both lease modes and both backends in two runs, not four: one backend runs its workers in bucket mode, the
// other in task mode, and the seed's parity says which (so every pairing comes up over time, and CHAOS_SEED
// replays the same one). The planted-fault run takes the mode the Consul run did not.

const env = process.env;
const seed = env.CHAOS_SEED ? Number(env.CHAOS_SEED) : randomSeed();
const log = env.CHAOS_VERBOSE ? (line: string) => process.stdout.write(`${line}\n`) : undefined;
const bucketBackend = seed % 2 === 0 ? 'consul' : 'dynamodb';
const runs = (['consul', 'dynamodb'] as const).map(
  (backend) => [backend, backend === bucketBackend ? 'bucket' : 'task'] as const,
);

describe.each(runs)('chaos, short run on %s, %s leases', (backend, leaseBy) => {
  it('keeps every invariant through kills, pauses, network faults, clock skew and server faults', {
    timeout: 150_000,
  }, async () => {
    const result = await runChaos({
      backend,
      leaseBy,
      seed,
      faultMs: 36_000,
      drainMs: 25_000,
      workers: 3,
      tasks: 140,
      meanFaultIntervalMs: 1_800,
      log,
    });
    const context = `seed ${result.seed} (${leaseBy} leases), logs in ${result.outDir}\n${result.report}`;
    expect(result.violations, context).toEqual([]);
    expect(result.crashes, context).toEqual([]);
    expect(result.unexpectedErrors, context).toEqual([]);
    expect(result.metrics.lost, context).toBe(0);
    // The run must have done what it claims, or a pass means nothing.
    const kinds = Object.keys(FAULT_KINDS).filter(
      (kind) =>
        (backend === 'consul' || kind !== 'election') && (RESTARTABLE.has(backend) || kind !== 'restart'),
    );
    for (const kind of kinds.filter((k) => k !== 'skew')) {
      expect(result.faults[kind], `${kind} faults; ${context}`).toBeGreaterThan(0);
    }
    expect(result.metrics.done, context).toBeGreaterThan(100);
    expect(result.metrics.appliedCompletions, context).toBe(result.metrics.done);
    expect(result.workerLogs.sessionsLost, context).toBeGreaterThan(0);
    // A quarter of the tasks are of a kind limited to 2 (the kind-limit invariant above held for them).
    expect(result.metrics.limit?.executions, context).toBeGreaterThan(0);
    const limited = result.metrics.limit;
    expect((limited?.done ?? 0) + (limited?.dead ?? 0), context).toBe(limited?.tasks);
    if (leaseBy === 'bucket') {
      // The bucket checks ran, and buckets changed hands: lost with sessions, taken over, handed back.
      expect(result.metrics.settles, context).toBeGreaterThanOrEqual(result.metrics.done);
      expect(result.metrics.bucketLeaseChanges, context).toBeGreaterThan(result.buckets);
      expect(result.workerLogs.bucketsLost, context).toBeGreaterThan(0);
    }
  });
});

describe('chaos checker on a real run with a planted fault', () => {
  const leaseBy = bucketBackend === 'consul' ? 'task' : 'bucket';
  it(`catches a worker whose handler writes its effect without the fence (${leaseBy} leases)`, {
    timeout: 120_000,
  }, async () => {
    // Worker 1's handler skips the fence check and ignores its signal; it is paused mid-task for longer than
    // its lease, so worker 2 takes its tasks (or their bucket) over; when it wakes up, it writes its stale
    // effects anyway.
    const result = await runChaos({
      backend: 'consul',
      leaseBy,
      seed,
      faultMs: 16_000,
      drainMs: 20_000,
      workers: 2,
      tasks: 30,
      taskMs: { min: 600, max: 1_200 },
      faultWeights: Object.fromEntries(Object.keys(FAULT_KINDS).map((kind) => [kind, 0])),
      extraFaults: [{ at: 1_500, kind: 'pause', worker: 1, durationMs: 10_000, whenBusy: true }],
      handlerModes: { 1: 'unfenced' },
      log,
    });
    const context = `seed ${result.seed} (${leaseBy} leases), logs in ${result.outDir}\n${result.report}`;
    expect(result.faults.pause, context).toBe(1);
    expect(result.ok, context).toBe(false);
    const stale = result.violations.filter(
      (v) => v.invariant === 'effect-once' && /stale effect applied by w1-1/.test(v.message),
    );
    expect(stale.length, context).toBeGreaterThan(0);
    // Only the effects broke: the fenced task writes of the same run stayed exactly-once.
    expect(new Set(result.violations.map((v) => v.invariant)), context).toEqual(new Set(['effect-once']));
  });
});
