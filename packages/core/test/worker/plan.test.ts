import { describe, expect, it } from 'vitest';
import { type Member, planBalance, rendezvous, targets } from '../../src/worker/bucket-mode/plan.js';

const m = (id: string, held = 0, cap = Number.POSITIVE_INFINITY): Member => ({ id, held, cap });

describe('bucket balancing rule', () => {
  it('spreads the buckets evenly, the remainder to the members that hold the most (then by id)', () => {
    expect(Object.fromEntries(targets(10, [m('a'), m('b'), m('c')]))).toEqual({ a: 4, b: 3, c: 3 });
    // c already holds 4: it keeps the extra one instead of moving it to a.
    expect(Object.fromEntries(targets(10, [m('a', 3), m('b', 3), m('c', 4)]))).toEqual({ a: 3, b: 3, c: 4 });
    expect([
      ...targets(
        64,
        Array.from({ length: 8 }, (_, i) => m(`w${i}`)),
      ).values(),
    ]).toEqual(Array(8).fill(8));
    const sum = (t: Map<string, number>) => [...t.values()].reduce((a, b) => a + b, 0);
    for (let n = 1; n <= 40; n++) {
      const t = targets(
        64,
        Array.from({ length: n }, (_, i) => m(`w${i}`, i % 3)),
      );
      expect(sum(t)).toBe(64);
      expect(Math.max(...t.values()) - Math.min(...t.values())).toBeLessThanOrEqual(1);
    }
  });

  it('caps are honoured and the rest goes to the others (water-filling); all capped leaves buckets free', () => {
    expect(Object.fromEntries(targets(10, [m('a', 0, 1), m('b'), m('c')]))).toEqual({ a: 1, b: 5, c: 4 });
    expect(Object.fromEntries(targets(10, [m('a', 0, 2), m('b', 0, 2)]))).toEqual({ a: 2, b: 2 });
  });

  it('a member below its share takes free buckets, best rendezvous score first; above it hands the excess back', () => {
    const members = [m('a', 6), m('b', 6)];
    const plan = planBalance(16, members, m('c', 0), [12, 13, 14, 15]);
    expect(plan.target).toBe(5);
    expect(plan.release).toBe(0);
    expect(plan.acquire).toHaveLength(4);
    expect(plan.acquire).toEqual([...plan.acquire].sort((x, y) => rendezvous('c', y) - rendezvous('c', x)));
    // a sees c joined with nothing: its share drops from 8 to 6 (it holds 6+2 = 8 here), so it hands back 2.
    expect(planBalance(16, [m('a', 8), m('b', 8), m('c', 0)], m('a', 8), [])).toMatchObject({
      target: 6,
      release: 2,
    });
  });

  it('a joining worker moves only its share: the others release exactly what it takes', () => {
    // 8 workers holding 8 of 64 each; a ninth joins. Every worker runs the rule on the same view.
    const before = Array.from({ length: 8 }, (_, i) => m(`w${i}`, 8));
    const view = [...before, m('w8', 0)];
    const released = before.map((w) => planBalance(64, view, w, []).release).reduce((a, b) => a + b, 0);
    const joiner = planBalance(
      64,
      view,
      m('w8', 0),
      Array.from({ length: released }, (_, i) => i),
    ).acquire.length;
    expect(released).toBe(joiner);
    expect(joiner).toBe(7);
  });

  it('different workers prefer different free buckets (few collisions when they take at once)', () => {
    const free = Array.from({ length: 64 }, (_, i) => i);
    const firsts = new Set(
      Array.from({ length: 16 }, (_, i) => planBalance(64, [], m(`w${i}`), free).acquire[0]),
    );
    expect(firsts.size).toBeGreaterThanOrEqual(10);
  });
});
