import { isBatonError, type Lease, type LockSession, type SessionOptions } from '@baton/core';
import {
  abandonable,
  check,
  checkEqual,
  defineCase,
  delay,
  eventually,
  rejects,
  type SuiteContext,
} from './context.js';
import type { LockHarnessFactory, LockSuiteOptions, TestFn } from './types.js';

/**
 * The waiting line of a backend with the `fairQueue` capability: blocking acquisitions are served in the
 * order they started waiting, a releasing holder that asks again goes to the back, and a waiter that gives
 * up or crashes stops blocking the line. Backends without the capability skip the group. The harness's
 * `inspect` must report `waiters`: the cases wait on it instead of guessing how long entering takes.
 *
 * Sessions whose expiry is not what a case is about use at least {@link LINE_TTL_MS}: on a starved machine
 * a session with a very short TTL is (correctly) lost when its renewal is late, which would end its place
 * in line and say nothing about the order.
 */
export function fairnessTests(test: TestFn, factory: LockHarnessFactory, options: LockSuiteOptions): void {
  defineCase(
    test,
    factory,
    options,
    'fair queue: waiters are served in the order they started waiting',
    async (ctx) => {
      if (!ctx.harness.provider.capabilities.fairQueue) return;
      const key = ctx.key();
      const holder = await openLong(ctx);
      const first = await holder.tryAcquire(key);
      check(first, 'acquire');
      const served = new Served(ctx, key);
      for (const name of ['b', 'c', 'd', 'e']) await served.enqueue(name, await openLong(ctx));
      await first.release();
      const leases = await served.all();
      checkEqual(served.order.join(' '), 'b c d e', 'order in which the waiters got the key');
      for (let i = 1; i < leases.length; i++) {
        check(leases[i]!.fence > leases[i - 1]!.fence, 'fences increase along the line');
      }
    },
  );

  defineCase(
    test,
    factory,
    options,
    'fair queue: a holder that releases and asks again goes to the back of the line',
    async (ctx) => {
      if (!ctx.harness.provider.capabilities.fairQueue) return;
      const key = ctx.key();
      const a = await openLong(ctx);
      const first = await a.tryAcquire(key);
      check(first, 'acquire');
      const served = new Served(ctx, key);
      await served.enqueue('b', await openLong(ctx));
      await served.enqueue('c', await openLong(ctx));
      await first.release();
      // Asks again at once, while b and c wait (b may already hold the key: a still lines up behind c).
      served.start('a', a);
      await served.all();
      checkEqual(served.order.join(' '), 'b c a', 'order after the holder asked again');
    },
  );

  defineCase(
    test,
    factory,
    options,
    'fair queue: waiters that give up (abort, timeout) leave the line without blocking it',
    async (ctx) => {
      if (!ctx.harness.provider.capabilities.fairQueue) return;
      const key = ctx.key();
      const a = await openLong(ctx);
      const first = await a.tryAcquire(key);
      check(first, 'acquire');
      const [b, c, d] = [await openLong(ctx), await openLong(ctx), await openLong(ctx)];
      const bound = handoverBoundMs(ctx, d.ttlMs);
      const stop = new AbortController();
      const aborted = abandonable(b.acquire(key, { signal: stop.signal }));
      await inLine(ctx, key, b);
      const timedOut = abandonable(c.acquire(key, { timeoutMs: ctx.ttlMs + 1_000 }));
      await inLine(ctx, key, c);
      const served = new Served(ctx, key);
      await served.enqueue('d', d);
      stop.abort(new Error('caller gave up'));
      checkEqual(errorCode(await rejects(aborted, 'aborted acquire')), 'ABORTED', 'the aborted wait');
      checkEqual(errorCode(await rejects(timedOut, 'acquire with timeout')), 'TIMEOUT', 'the timed-out wait');
      await eventually(
        async () => ((await waitersOf(ctx, key)).join(' ') === d.id ? true : undefined),
        bound + 2_000,
        'the waiters that gave up to leave the line',
        ctx.options.granularityMs,
      );
      const released = performance.now();
      await first.release();
      await served.all();
      const took = performance.now() - released;
      check(
        took <= bound,
        `the next waiter got the key ${Math.round(took)} ms after the release: waiters that gave up still blocked the line (bound ${bound} ms)`,
      );
      checkEqual(b.leases().length + c.leases().length, 0, 'no lease left with the waiters that gave up');
    },
  );

  defineCase(
    test,
    factory,
    options,
    'fair queue: a crashed waiter stops blocking the line within the expiry bound',
    async (ctx) => {
      if (!ctx.harness.provider.capabilities.fairQueue) return;
      const key = ctx.key();
      const a = await openLong(ctx);
      const first = await a.tryAcquire(key);
      check(first, 'acquire');
      const crashed = await ctx.open({ lockDelayMs: 0 });
      const crashedWait: Promise<unknown> = crashed.acquire(key).catch(() => undefined);
      await inLine(ctx, key, crashed);
      const served = new Served(ctx, key);
      const c = await openLong(ctx);
      await served.enqueue('c', c);
      await ctx.harness.crash(crashed);
      await first.release();
      const bound = ctx.options.expiryBoundMs * 2 + handoverBoundMs(ctx, c.ttlMs) + 2_000;
      const done = await Promise.race([served.all(), delay(bound).then(() => 'timeout' as const)]);
      check(
        done !== 'timeout',
        `the waiter behind a crashed one did not get the key within ${bound} ms: the crashed waiter blocks the line`,
      );
      const crashedGot = await Promise.race([crashedWait, delay(0).then(() => undefined)]);
      checkEqual(crashedGot, undefined, 'what the crashed waiter got');
      checkEqual(crashed.leases().length, 0, 'leases of the crashed waiter');
    },
  );
}

/** Shortest session TTL of the cases that are about order, not expiry. */
export const LINE_TTL_MS = 3_000;

/** A session for a case about order: the suite's options, with a TTL of at least {@link LINE_TTL_MS}. */
export function openLong(ctx: SuiteContext, overrides: SessionOptions = {}): Promise<LockSession> {
  return ctx.open({ ...overrides, ttlMs: Math.max(ctx.ttlMs, LINE_TTL_MS) });
}

/**
 * Upper bound for "promptly" after a release, for a waiter whose session has `ttlMs`: one watch round trip,
 * or one poll interval of the waiter.
 */
export function handoverBoundMs(ctx: SuiteContext, ttlMs = ctx.ttlMs): number {
  const native = ctx.harness.provider.capabilities.nativeWatch;
  return ttlMs * (native ? 0.5 : 0.75) + ctx.options.granularityMs * 2;
}

/** The sessions waiting for `key`, as the backend reports them. */
export async function waitersOf(ctx: SuiteContext, key: string): Promise<readonly string[]> {
  const stored = await ctx.harness.inspect(key);
  const waiters = stored?.waiters;
  check(
    waiters !== undefined || stored === null,
    'the harness must report `waiters` in inspect() for a backend with the fairQueue capability',
  );
  return waiters ?? [];
}

/** Waits until `session` is in `key`'s line. */
export async function inLine(ctx: SuiteContext, key: string, session: LockSession): Promise<void> {
  await eventually(
    async () => ((await waitersOf(ctx, key)).includes(session.id) ? true : undefined),
    handoverBoundMs(ctx, session.ttlMs) + 5_000,
    `session ${session.id} to enter the line of '${key}'`,
    ctx.options.granularityMs,
  );
}

function errorCode(error: unknown): string | undefined {
  return isBatonError(error) ? error.code : String(error);
}

/**
 * Blocking acquisitions of one key that each record when they got it, hold it a moment and release it, so
 * the next waiter follows.
 */
class Served {
  readonly order: string[] = [];
  readonly #waits: Array<Promise<Lease>> = [];
  readonly #ctx: SuiteContext;
  readonly #key: string;

  constructor(ctx: SuiteContext, key: string) {
    this.#ctx = ctx;
    this.#key = key;
  }

  /** Starts a blocking acquisition and returns once the session is in line. */
  async enqueue(name: string, session: LockSession): Promise<void> {
    this.start(name, session);
    await inLine(this.#ctx, this.#key, session);
  }

  start(name: string, session: LockSession): void {
    const timeoutMs = this.#ctx.options.expiryBoundMs * 4 + 20_000;
    this.#waits.push(
      abandonable(
        session.acquire(this.#key, { timeoutMs }).then(async (lease) => {
          this.order.push(name);
          await delay(Math.random() * this.#ctx.options.granularityMs);
          await lease.release();
          return lease;
        }),
      ),
    );
  }

  all(): Promise<Lease[]> {
    return Promise.all(this.#waits);
  }
}
