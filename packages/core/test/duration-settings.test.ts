import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  DEFAULT_MAX_DURATION_MS,
  type DurationBounds,
  describeDurationBounds,
  durationBounds,
  durationMs,
  durationSettings,
  KeepAlive,
  lockDurationBounds,
  MAX_DURATION_MS,
  MAX_TIMER_MS,
  MemoryLockProvider,
  MemoryLockStore,
  MemoryTaskSource,
  memoryConfigSchema,
  memoryDurationBounds,
  pollingWatch,
  runWhileLeader,
  type Task,
  Worker,
  type WorkerOptions,
  workerDurationBounds,
} from '../src/index.js';

const HOUR = 3_600_000;

/** Values just outside `bounds` (below only when there is room below). */
function outside(bounds: DurationBounds): number[] {
  return bounds.min > 0 ? [bounds.min - 1, bounds.max + 1] : [bounds.max + 1];
}

async function refusal(attempt: () => unknown): Promise<Error> {
  try {
    await attempt();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the value to be refused');
}

function baseOptions(): WorkerOptions {
  return {
    locks: new MemoryLockProvider({ store: new MemoryLockStore(), lockDelayMs: 0 }),
    source: new MemoryTaskSource(),
    handler: () => 'ok',
  };
}

/**
 * How each Worker duration option is given. Keyed like `workerDurationBounds`, so an option added there
 * without a row here fails the first test below.
 */
const applyWorkerOption: Record<keyof typeof workerDurationBounds, (ms: number) => Promise<unknown>> = {
  handlerTimeoutMs: async (ms) => new Worker({ ...baseOptions(), handlerTimeoutMs: ms }),
  abandonAfterMs: async (ms) => new Worker({ ...baseOptions(), abandonAfterMs: ms }),
  stopGraceMs: async (ms) => new Worker({ ...baseOptions(), stopGraceMs: ms }),
  'stop.graceMs': async (ms) => new Worker(baseOptions()).stop({ graceMs: ms }),
  'schedule.every': async (ms) => new Worker({ ...baseOptions(), schedule: { every: ms } }),
  'retry.baseMs': async (ms) => new Worker({ ...baseOptions(), retry: { baseMs: ms, maxMs: ms } }),
  'retry.maxMs': async (ms) => new Worker({ ...baseOptions(), retry: { baseMs: 1, maxMs: ms } }),
  writeRetryMs: async (ms) => new Worker({ ...baseOptions(), writeRetryMs: ms }),
  'leader.recampaignDelayMs': async (ms) =>
    new Worker({ ...baseOptions(), leader: { key: 'leader/x', run: () => {}, recampaignDelayMs: ms } }),
  'buckets.balanceIntervalMs': async (ms) =>
    new Worker({ ...baseOptions(), leaseBy: 'bucket', buckets: { balanceIntervalMs: ms } }),
  heartbeatEveryMs: async (ms) => new Worker({ ...baseOptions(), heartbeatEveryMs: ms }),
};

/** The lock API's duration options, keyed like `lockDurationBounds`. */
const applyLockOption: Record<keyof typeof lockDurationBounds, (ms: number) => Promise<unknown>> = {
  lockAtLeastForMs: async (ms) => {
    const session = await new MemoryLockProvider({ lockDelayMs: 0 }).openSession();
    try {
      return await session.tryAcquire(`k-${Math.random()}`, { lockAtLeastForMs: ms });
    } finally {
      await session.destroy();
    }
  },
  timeoutMs: async (ms) => {
    const session = await new MemoryLockProvider({ lockDelayMs: 0 }).openSession();
    try {
      return await session.acquire(`k-${Math.random()}`, { timeoutMs: ms });
    } finally {
      await session.destroy();
    }
  },
  pollIntervalMs: async (ms) => {
    const controller = new AbortController();
    for await (const _ of pollingWatch(async () => null, { pollIntervalMs: ms, signal: controller.signal })) {
      controller.abort();
    }
  },
};

const applyMemoryOption: Record<keyof typeof memoryDurationBounds, (ms: number) => Promise<unknown>> = {
  ttlMs: async (ms) => {
    new MemoryLockProvider({ ttlMs: ms });
    const session = await new MemoryLockProvider().openSession({ ttlMs: ms });
    await session.destroy();
  },
  lockDelayMs: async (ms) => {
    new MemoryLockProvider({ lockDelayMs: ms });
    const session = await new MemoryLockProvider().openSession({ lockDelayMs: ms });
    await session.destroy();
  },
};

const optionTables = [
  ['Worker', workerDurationBounds, applyWorkerOption],
  ['lock API', lockDurationBounds, applyLockOption],
  ['MemoryLockProvider', memoryDurationBounds, applyMemoryOption],
] as const;

describe('every duration option of the library works or is refused naming it and its bounds', () => {
  for (const [what, table, apply] of optionTables) {
    it(`${what}: each option in the bounds table has a row, accepts its bounds and refuses beyond them`, async () => {
      expect(Object.keys(apply).sort()).toEqual(Object.keys(table).sort());
      for (const [name, bounds] of Object.entries(table) as Array<[string, DurationBounds]>) {
        expect(bounds.max, name).toBeLessThanOrEqual(MAX_DURATION_MS);
        const run = (apply as Record<string, (ms: number) => Promise<unknown>>)[name]!;
        await expect(run(bounds.min), `${name} = min`).resolves.not.toThrow();
        for (const value of outside(bounds)) {
          const error = await refusal(() => run(value));
          expect(error, `${name} = ${value}`).toMatchObject({ code: 'INVALID_ARGUMENT' });
          expect(error.message).toContain(name.split('.').at(-1));
          expect(error.message).toContain(describeDurationBounds(bounds));
        }
        for (const value of [Number.NaN, Number.POSITIVE_INFINITY, -1]) {
          await expect(run(value), `${name} = ${value}`).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
        }
      }
    });
  }

  it('KeepAlive, MemoryTaskSource and runWhileLeader refuse durations outside their bounds', async () => {
    const keepAlive = (ttlMs: number) => new KeepAlive({ ttlMs, renew: async () => {}, onLost: () => {} });
    expect(() => keepAlive(DEFAULT_MAX_DURATION_MS)).not.toThrow();
    expect(() => keepAlive(1_000 * HOUR)).toThrow(/KeepAlive: ttlMs .* from 1ms to 24h/);
    expect(
      () => new KeepAlive({ ttlMs: 1_000, intervalMs: 2_000, renew: async () => {}, onLost: () => {} }),
    ).toThrow(/intervalMs/);
    expect(() => new MemoryTaskSource({ reclaimAfterMs: MAX_DURATION_MS })).not.toThrow();
    expect(() => new MemoryTaskSource({ reclaimAfterMs: MAX_DURATION_MS + 1 })).toThrow(
      /reclaimAfterMs .* from 0 to 8760h \(365 days\)/,
    );
    await expect(
      runWhileLeader(new MemoryLockProvider(), 'leader/x', () => {}, { recampaignDelayMs: 1_000 * HOUR }),
    ).rejects.toThrow(/recampaignDelayMs .* from 0 to 24h/);
  });

  it('the memory backend schema declares the same bounds as its options', () => {
    expect(Object.fromEntries(durationSettings(memoryConfigSchema).map((s) => [s.path, s.bounds]))).toEqual(
      memoryDurationBounds,
    );
  });

  it('no duration setting can claim more than baton honours; the default cap fits one timer', () => {
    expect(DEFAULT_MAX_DURATION_MS).toBeLessThanOrEqual(MAX_TIMER_MS);
    expect(() => durationMs({ max: MAX_DURATION_MS + 1 })).toThrow(RangeError);
    expect(() => durationBounds({ min: 10, max: 5 })).toThrow(RangeError);
    const field = durationMs({ min: 100 });
    expect(field.safeParse('24h').success).toBe(true);
    const refused = field.safeParse('25h');
    expect(refused.success).toBe(false);
    expect(refused.error?.issues[0]?.message).toBe('expected a duration from 100ms to 24h');
  });
});

describe('long waits of the Worker work under timers that overflow like Node’s', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A worker whose one task's handler runs until released (or aborted), on timers faked to overflow. */
  async function longWorker(options: Partial<WorkerOptions>) {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] });
    const locks = new MemoryLockProvider({
      store: new MemoryLockStore(),
      ttlMs: DEFAULT_MAX_DURATION_MS,
      lockDelayMs: 0,
    });
    const source = new MemoryTaskSource();
    await source.enqueue({ kind: 'long' });
    const state = { started: 0, aborted: undefined as unknown };
    const worker = new Worker({
      locks,
      source,
      schedule: { once: true },
      // Hundreds of hours of fake time would fire a heartbeat every 10 s: these tests are about long waits.
      heartbeatEveryMs: false,
      ...options,
      handler: ({ signal }: { task: Task; signal: AbortSignal }) =>
        new Promise((_resolve, reject) => {
          state.started++;
          signal.addEventListener('abort', () => {
            state.aborted = signal.reason;
            reject(signal.reason);
          });
        }),
    });
    const run = worker.run();
    await vi.advanceTimersByTimeAsync(10);
    return { worker, state, run };
  }

  it('handlerTimeoutMs of 600h lets a handler run for 599h and aborts it at 600h', async () => {
    const { worker, state, run } = await longWorker({ handlerTimeoutMs: 600 * HOUR });
    expect(state.started).toBe(1);
    await vi.advanceTimersByTimeAsync(599 * HOUR);
    expect(state.aborted).toBeUndefined();
    await vi.advanceTimersByTimeAsync(HOUR);
    expect(state.aborted).toMatchObject({ code: 'TIMEOUT' });
    await worker.stop();
    await run;
  });

  it('stopGraceMs of 600h lets a running handler run on for 599h after stop(), and aborts it at 600h', async () => {
    const { worker, state, run } = await longWorker({
      stopGraceMs: 600 * HOUR,
      handlerTimeoutMs: 1_000 * HOUR,
    });
    const stopped = worker.stop();
    await vi.advanceTimersByTimeAsync(599 * HOUR);
    expect(state.aborted).toBeUndefined();
    await vi.advanceTimersByTimeAsync(HOUR);
    expect(state.aborted).toMatchObject({ code: 'ABORTED' });
    await stopped;
    await run;
  });

  it('schedule.every of 30 days makes the next pass after 30 days, not at once', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] });
    const worker = new Worker({
      locks: new MemoryLockProvider({ store: new MemoryLockStore(), ttlMs: DEFAULT_MAX_DURATION_MS }),
      source: new MemoryTaskSource(),
      schedule: { every: 720 * HOUR },
      handler: () => 'ok',
      heartbeatEveryMs: false,
    });
    const passes: number[] = [];
    worker.on('pass-started', (e) => passes.push(e.pass));
    const run = worker.run();
    await vi.advanceTimersByTimeAsync(719 * HOUR);
    expect(passes).toEqual([1]);
    await vi.advanceTimersByTimeAsync(HOUR);
    expect(passes).toEqual([1, 2]);
    await worker.stop();
    await run;
  });
});
