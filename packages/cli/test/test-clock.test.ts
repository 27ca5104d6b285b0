import { ManualClock, systemClock } from '@baton/core';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../src/classify-errors.js';
import { CLOCK_SKEW_ENV, workerClock } from '../src/test-clock.js';

describe('BATON_TEST_CLOCK_SKEW_MS (worker clock hook for chaos tests)', () => {
  it('is the system clock when unset or empty', () => {
    expect(workerClock({})).toEqual({ clock: systemClock, skewMs: 0 });
    expect(workerClock({ [CLOCK_SKEW_ENV]: '' })).toEqual({ clock: systemClock, skewMs: 0 });
    expect(workerClock({ [CLOCK_SKEW_ENV]: '0' })).toEqual({ clock: systemClock, skewMs: 0 });
  });

  it('moves the wall clock only, by hours in either direction', async () => {
    const base = new ManualClock({ start: 1_000, wallStart: Date.UTC(2026, 0, 1) });
    const ahead = workerClock({ [CLOCK_SKEW_ENV]: '10800000' }, base);
    const behind = workerClock({ [CLOCK_SKEW_ENV]: ' -7200000 ' }, base);
    expect(ahead.skewMs).toBe(3 * 3_600_000);
    expect(behind.skewMs).toBe(-2 * 3_600_000);
    expect(ahead.clock.wallNow()).toBe(Date.UTC(2026, 0, 1) + 3 * 3_600_000);
    expect(behind.clock.wallNow()).toBe(Date.UTC(2026, 0, 1) - 2 * 3_600_000);
    expect(ahead.clock.monotonicNow()).toBe(1_000);

    let fired = false;
    behind.clock.setTimeout(() => {
      fired = true;
    }, 500);
    await base.advance(499);
    expect(fired).toBe(false);
    await base.advance(1);
    expect(fired).toBe(true);
    expect(behind.clock.monotonicNow()).toBe(1_500);
  });

  it.each(['2h', '1.5', 'abc', '1e9', String(11 * 365 * 24 * 3_600_000)])(
    'rejects %s naming the variable',
    (value) => {
      let error: unknown;
      try {
        workerClock({ [CLOCK_SKEW_ENV]: value });
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(UsageError);
      expect((error as UsageError).field).toBe(CLOCK_SKEW_ENV);
      expect((error as UsageError).message).toMatch(/whole number of milliseconds/);
    },
  );
});
