import { describe, expect, it } from 'vitest';
import { drawSkew, FAULT_KINDS, planFaults, RESTARTABLE } from './faults.mjs';
import { Random } from './random.mjs';

const short = { durationMs: 36_000, workers: 3, ttlMs: 2_000, reclaimAfterMs: 5_000, meanIntervalMs: 1_800 };

describe('fault schedule', () => {
  it('is the same for the same seed, and differs between seeds', () => {
    const plan = (seed: number) => planFaults(new Random(seed), { ...short, backend: 'consul' as const });
    expect(plan(42)).toEqual(plan(42));
    expect(plan(42)).not.toEqual(plan(43));
  });

  it.each(['consul', 'dynamodb', 'etcd', 'redis', 'postgres'] as const)(
    'has every kind of fault in every short %s run',
    (backend) => {
      const kinds = Object.keys(FAULT_KINDS).filter(
        (k) =>
          k !== 'skew' &&
          (backend === 'consul' || k !== 'election') &&
          (RESTARTABLE.has(backend) || k !== 'restart'),
      );
      for (let seed = 0; seed < 200; seed++) {
        const seen = new Set(planFaults(new Random(seed), { ...short, backend }).map((f) => f.kind));
        expect([...seen].sort(), `seed ${seed}`).toEqual([...kinds].sort());
      }
    },
  );

  it('never stacks two faults on one link of a worker, and impairs at most half the workers at once', () => {
    for (let seed = 0; seed < 100; seed++) {
      const plan = planFaults(new Random(seed), {
        ...short,
        durationMs: 300_000,
        workers: 4,
        backend: 'consul',
      });
      const busy = new Map<string, number>();
      for (const fault of plan) {
        if (fault.worker === undefined) continue;
        const links =
          fault.kind === 'kill' || fault.kind === 'pause'
            ? ['process']
            : fault.target === 'both'
              ? ['lock', 'pg']
              : [fault.target!];
        for (const link of [...links, 'process']) {
          const key = `${fault.worker}/${link}`;
          expect(fault.at, `seed ${seed}: ${JSON.stringify(fault)}`).toBeGreaterThanOrEqual(
            busy.get(key) ?? 0,
          );
        }
        for (const link of links) busy.set(`${fault.worker}/${link}`, fault.at + (fault.durationMs ?? 0));
      }
      const impairing = plan.filter((f) => f.kind === 'kill' || f.kind === 'pause' || f.kind === 'blackhole');
      for (const fault of impairing) {
        const overlapping = impairing.filter(
          (other) => other.at <= fault.at && fault.at < other.at + (other.durationMs ?? 0),
        );
        expect(new Set(overlapping.map((f) => f.worker)).size, `seed ${seed}`).toBeLessThanOrEqual(2);
      }
      expect(plan.every((f) => f.at < 300_000 * 0.9)).toBe(true);
    }
  });

  it('skews about 40% of the worker incarnations by 1 to 12 hours, either way', () => {
    const random = new Random(7);
    const skews = Array.from({ length: 1_000 }, () => drawSkew(random));
    const skewed = skews.filter((s) => s !== 0);
    expect(skewed.length).toBeGreaterThan(300);
    expect(skewed.length).toBeLessThan(500);
    expect(skewed.every((s) => Math.abs(s) >= 3_600_000 && Math.abs(s) <= 12 * 3_600_000)).toBe(true);
    expect(skewed.some((s) => s < 0) && skewed.some((s) => s > 0)).toBe(true);
  });
});
