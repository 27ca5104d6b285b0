import type { Lease } from '@baton/core';
import { check, checkEqual, defineCase, delay, rejects } from './context.js';
import type { LockHarnessFactory, LockSuiteOptions, TestFn } from './types.js';

/** The blocking `acquire` and `withLock`, shared by every backend. */
export function blockingTests(test: TestFn, factory: LockHarnessFactory, options: LockSuiteOptions): void {
  defineCase(
    test,
    factory,
    options,
    'acquire: waits for the holder to release, then succeeds',
    async (ctx) => {
      const [a, b] = [await ctx.open(), await ctx.open()];
      const key = ctx.key();
      const held = await a.tryAcquire(key);
      check(held, 'acquire');
      let got: Lease | undefined;
      const waiting = b.acquire(key, { timeoutMs: 20_000 }).then((l) => {
        got = l;
        return l;
      });
      await delay(150);
      checkEqual(got, undefined, 'still waiting while held');
      await held.release();
      const lease = await waiting;
      check(lease.fence > held.fence, 'new lease fence');
    },
  );

  defineCase(test, factory, options, 'acquire: rejects with TIMEOUT when the key stays held', async (ctx) => {
    const [a, b] = [await ctx.open(), await ctx.open()];
    const key = ctx.key();
    check(await a.tryAcquire(key), 'acquire');
    const error = (await rejects(b.acquire(key, { timeoutMs: 300 }), 'acquire with timeout')) as {
      code?: string;
    };
    checkEqual(error.code, 'TIMEOUT', 'error code');
    checkEqual(b.leases().length, 0, 'no lease left behind');
  });

  defineCase(test, factory, options, 'acquire: rejects with ABORTED when the caller aborts', async (ctx) => {
    const [a, b] = [await ctx.open(), await ctx.open()];
    const key = ctx.key();
    check(await a.tryAcquire(key), 'acquire');
    const controller = new AbortController();
    const pending = b.acquire(key, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('shutdown')), 100);
    const error = (await rejects(pending, 'aborted acquire')) as { code?: string };
    checkEqual(error.code, 'ABORTED', 'error code');
  });

  defineCase(
    test,
    factory,
    options,
    'withLock: runs the function holding the lock and releases after',
    async (ctx) => {
      const [a, b] = [await ctx.open(), await ctx.open()];
      const key = ctx.key();
      const result = await a.withLock(key, async (lease) => {
        checkEqual(await b.tryAcquire(key), null, 'held inside withLock');
        return lease.fence;
      });
      check(typeof result === 'number', 'withLock returns the function result');
      check(await b.tryAcquire(key), 'released after withLock');
    },
  );

  defineCase(test, factory, options, 'withLock: releases even when the function throws', async (ctx) => {
    const [a, b] = [await ctx.open(), await ctx.open()];
    const key = ctx.key();
    const error = await rejects(
      a.withLock(key, async () => {
        throw new Error('boom');
      }),
      'withLock with a throwing function',
    );
    checkEqual((error as Error).message, 'boom', 'the original error propagates');
    check(await b.tryAcquire(key), 'released after the throw');
  });
}
