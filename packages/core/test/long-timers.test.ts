import { afterEach, describe, expect, it, vi } from 'vitest';
import { type Clock, ManualClock, sleep, systemClock } from '../src/clock.js';
import { MAX_TIMER_MS } from '../src/duration-bounds.js';

const HOUR = 3_600_000;
/** `--handler-timeout 600h` from the issue: 2 160 000 000 ms, just past what one Node timer holds. */
const SIX_HUNDRED_HOURS = 600 * HOUR;
const THIRTY_DAYS = 720 * HOUR;

/** Arms `ms` on `clock` and reports whether it fired. */
function arm(clock: Clock, ms: number) {
  const state = { fired: 0 };
  const handle = clock.setTimeout(() => state.fired++, ms);
  return { state, handle };
}

describe('a wait longer than one platform timer holds never fires early', () => {
  it('holds on ManualClock, whose single timers are capped like real ones', async () => {
    const clock = new ManualClock();
    for (const ms of [MAX_TIMER_MS + 1, SIX_HUNDRED_HOURS, THIRTY_DAYS, 3 * MAX_TIMER_MS + 7]) {
      const { state } = arm(clock, ms);
      await clock.advance(ms - 1);
      expect(state.fired, `${ms} ms fired before its time`).toBe(0);
      await clock.advance(1);
      expect(state.fired, `${ms} ms did not fire on time`).toBe(1);
      await clock.advance(10 * MAX_TIMER_MS);
      expect(state.fired, `${ms} ms fired twice`).toBe(1);
    }
    expect(clock.pendingTimers).toBe(0);
  });

  it('can be cancelled before and after its first link fired', async () => {
    const clock = new ManualClock();
    const early = arm(clock, THIRTY_DAYS);
    const late = arm(clock, THIRTY_DAYS);
    clock.clearTimeout(early.handle);
    await clock.advance(MAX_TIMER_MS + 1);
    clock.clearTimeout(late.handle);
    await clock.advance(THIRTY_DAYS);
    expect([early.state.fired, late.state.fired]).toEqual([0, 0]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('sleep() on a clock waits the whole of a long delay', async () => {
    const clock = new ManualClock();
    let woke = false;
    void sleep(SIX_HUNDRED_HOURS, { clock }).then(() => {
      woke = true;
    });
    await clock.advance(SIX_HUNDRED_HOURS - 1);
    expect(woke).toBe(false);
    await clock.advance(1);
    expect(woke).toBe(true);
  });

  it('treats Infinity as never and negative or NaN delays as now', async () => {
    const clock = new ManualClock();
    const never = arm(clock, Number.POSITIVE_INFINITY);
    const negative = arm(clock, -5);
    const nan = arm(clock, Number.NaN);
    await clock.advance(0);
    expect([negative.state.fired, nan.state.fired]).toEqual([1, 1]);
    await clock.advance(20 * MAX_TIMER_MS);
    expect(never.state.fired).toBe(0);
    clock.clearTimeout(never.handle);
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('systemClock under timers that overflow like Node', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('the fake timers reproduce the overflow: a bare setTimeout of 600h fires after 1 ms', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let fired = false;
    globalThis.setTimeout(() => {
      fired = true;
    }, SIX_HUNDRED_HOURS);
    vi.advanceTimersByTime(1);
    expect(fired).toBe(true);
  });

  it.each([
    ['600h', SIX_HUNDRED_HOURS],
    ['30 days', THIRTY_DAYS],
    ['2^31 ms', MAX_TIMER_MS + 1],
  ])('systemClock.setTimeout(%s) fires at its time, not before', (_label, ms) => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { state, handle } = arm(systemClock, ms);
    vi.advanceTimersByTime(1);
    expect(state.fired).toBe(0);
    vi.advanceTimersByTime(ms - 2);
    expect(state.fired).toBe(0);
    vi.advanceTimersByTime(1);
    expect(state.fired).toBe(1);
    systemClock.clearTimeout(handle);
  });

  it('systemClock.clearTimeout cancels a chained wait mid-way', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { state, handle } = arm(systemClock, THIRTY_DAYS);
    vi.advanceTimersByTime(MAX_TIMER_MS + 1);
    systemClock.clearTimeout(handle);
    vi.advanceTimersByTime(THIRTY_DAYS);
    expect(state.fired).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});
