import { taskSourceSuite } from '@baton/testkit';
import { it } from 'vitest';
import { ManualClock, MemoryTaskSource } from '../../src/index.js';

// The shared TaskSource conformance suite, run against the in-memory reference source on a manual clock:
// `elapse` advances the source's clock, which ages every task.
taskSourceSuite(
  it,
  async (settings) => {
    const clock = new ManualClock();
    const { baseMs, maxMs } = settings.backoff;
    const source = new MemoryTaskSource({
      clock,
      reclaimAfterMs: settings.reclaimAfterMs,
      defaultMaxAttempts: settings.defaultMaxAttempts,
      retryDelayMs: (attempts) => Math.min(maxMs, baseMs * 2 ** (attempts - 1)),
    });
    return { source, elapse: (ms) => clock.advance(ms), close: () => source.close() };
  },
  { bucketLeases: true },
);
