import { describe, expect, it } from 'vitest';
import { ManualClock, skewedClock, systemClock } from '../src/clock.js';

describe('skewedClock', () => {
  it('moves only the wall clock of a plain clock', () => {
    const clock = skewedClock(-3 * 3_600_000);
    expect(Math.abs(clock.wallNow() + 3 * 3_600_000 - Date.now())).toBeLessThan(1_000);
    expect(Math.abs(clock.monotonicNow() - systemClock.monotonicNow())).toBeLessThan(1_000);
  });

  // Regression: it used to spread `base`, which drops the prototype methods of a class-based clock.
  it('keeps monotonic time and timers of a class-based clock such as ManualClock', async () => {
    const base = new ManualClock({ start: 10, wallStart: Date.UTC(2026, 0, 1) });
    const clock = skewedClock(5 * 3_600_000, base);
    expect(clock.wallNow()).toBe(Date.UTC(2026, 0, 1) + 5 * 3_600_000);
    expect(clock.monotonicNow()).toBe(10);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push('kept'), 100);
    const cancelled = clock.setTimeout(() => fired.push('cancelled'), 100);
    clock.clearTimeout(cancelled);
    await base.advance(100);
    expect(fired).toEqual(['kept']);
    expect(clock.monotonicNow()).toBe(110);
    expect(clock.wallNow()).toBe(Date.UTC(2026, 0, 1) + 100 + 5 * 3_600_000);
  });
});
