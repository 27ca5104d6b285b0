import { describe, expect, it } from 'vitest';
import { type BatonError, KeepAlive, ManualClock, SessionLostError, UnavailableError } from '../src/index.js';

function harness(renew: (signal: AbortSignal) => Promise<void>, ttlMs = 1_000) {
  const clock = new ManualClock();
  const lost: BatonError[] = [];
  const keepAlive = new KeepAlive({ ttlMs, clock, renew, onLost: (e) => lost.push(e), startedAt: 0 }).start();
  return { clock, lost, keepAlive };
}

describe('KeepAlive', () => {
  it('renews at half the TTL and never loses a healthy session', async () => {
    let renewals = 0;
    const { clock, lost } = harness(async () => {
      renewals++;
    });
    await clock.advance(10_000);
    expect(lost).toHaveLength(0);
    expect(renewals).toBe(20);
  });

  it('retries transient errors and keeps the session when one gets through in time', async () => {
    let calls = 0;
    const { clock, lost, keepAlive } = harness(async () => {
      calls++;
      if (calls <= 3) throw new UnavailableError('503 No cluster leader');
    });
    await clock.advance(3_000);
    expect(calls).toBeGreaterThan(4);
    expect(lost).toHaveLength(0);
    keepAlive.stop();
  });

  it('declares the session lost exactly TTL after the start of the last good renewal', async () => {
    let fail = false;
    const { clock, lost } = harness(async () => {
      if (fail) throw new UnavailableError('connection refused');
    });
    await clock.advance(500); // good renewal started at 500
    fail = true;
    await clock.advance(999);
    expect(lost).toHaveLength(0);
    await clock.advance(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]?.code).toBe('SESSION_LOST');
  });

  it('measures trust from when the renewal was sent, not when it answered', async () => {
    let mode: 'ok' | 'slow' | 'fail' = 'ok';
    const { clock, lost } = harness(async () => {
      if (mode === 'fail') throw new UnavailableError('connection reset');
      if (mode === 'slow') {
        mode = 'fail';
        await new Promise<void>((resolve) => clock.setTimeout(resolve, 400));
      }
    });
    await clock.advance(500); // renewal sent at 500 succeeds at once
    mode = 'slow'; // the one sent at 1000 answers at 1400; every later one fails
    await clock.advance(1_499); // t = 1999: trust runs to 1000 + TTL = 2000, not 1400 + TTL
    expect(lost).toHaveLength(0);
    await clock.advance(1);
    expect(lost).toHaveLength(1);
  });

  it('loses the session at the deadline even while a renewal hangs', async () => {
    const { clock, lost } = harness(async (signal) => {
      await new Promise<void>((_, reject) =>
        signal.addEventListener('abort', () => reject(new Error('aborted'))),
      );
    });
    await clock.advance(1_000);
    expect(lost).toHaveLength(1);
  });

  it('ends at once on a non-retryable error such as an unknown session', async () => {
    const { clock, lost } = harness(async () => {
      throw new SessionLostError("Session id 'x' not found");
    });
    await clock.advance(500);
    expect(lost).toHaveLength(1);
    expect(lost[0]?.message).toMatch(/not found/);
  });

  it('stop() prevents any later loss report', async () => {
    const { clock, lost, keepAlive } = harness(async () => {
      throw new UnavailableError('down');
    });
    keepAlive.stop();
    await clock.advance(5_000);
    expect(lost).toHaveLength(0);
  });
});
