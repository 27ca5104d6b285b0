import type { LockHolder } from '@baton/core';
import { check, checkEqual, defineCase, eventually } from './context.js';
import type { LockHarnessFactory, LockSuiteOptions, TestFn } from './types.js';

/** Holder lookup, publish, watch and list. */
export function discoveryTests(test: TestFn, factory: LockHarnessFactory, options: LockSuiteOptions): void {
  defineCase(test, factory, options, 'holder: null for a key nobody holds', async (ctx) => {
    checkEqual(await ctx.harness.provider.getHolder(ctx.key('never')), null, 'unheld key');
    const a = await ctx.open();
    const key = ctx.key();
    const lease = await a.tryAcquire(key);
    check(lease, 'acquire');
    await lease.release();
    checkEqual(await ctx.harness.provider.getHolder(key), null, 'released key');
  });

  defineCase(test, factory, options, 'holder: reports session, fence and published value', async (ctx) => {
    const a = await ctx.open();
    const key = ctx.key();
    const lease = await a.tryAcquire(key, { value: '{"id":"worker-1"}' });
    check(lease, 'acquire');
    const holder = await ctx.harness.provider.getHolder(key);
    check(holder, 'holder present');
    checkEqual(holder.sessionId, a.id, 'holder session');
    checkEqual(holder.fence, lease.fence, 'holder fence');
    checkEqual(holder.value, '{"id":"worker-1"}', 'holder value');
    checkEqual(lease.value, '{"id":"worker-1"}', 'lease value');
  });

  defineCase(
    test,
    factory,
    options,
    'holder: publish replaces the value and keeps the fence',
    async (ctx) => {
      const a = await ctx.open();
      const key = ctx.key();
      const lease = await a.tryAcquire(key, { value: 'v1' });
      check(lease, 'acquire');
      await lease.publish('v2');
      const holder = await ctx.harness.provider.getHolder(key);
      checkEqual(holder?.value, 'v2', 'published value');
      checkEqual(holder?.fence, lease.fence, 'fence unchanged by publish');
      checkEqual(lease.value, 'v2', 'lease.value after publish');
      await lease.release();
      const error = (await lease.publish('v3').then(
        () => undefined,
        (e: unknown) => e,
      )) as { code?: string } | undefined;
      checkEqual(error?.code, 'LEASE_LOST', 'publish after release');
    },
  );

  defineCase(
    test,
    factory,
    options,
    'watch: yields the current holder, then each change, in order',
    async (ctx) => {
      const [a, b] = [await ctx.open(), await ctx.open()];
      const key = ctx.key();
      const controller = new AbortController();
      const seen: Array<LockHolder | null> = [];
      const done = (async () => {
        for await (const holder of ctx.harness.provider.watch(key, {
          signal: controller.signal,
          pollIntervalMs: 50,
        })) {
          seen.push(holder);
        }
      })();
      try {
        await eventually(async () => (seen.length >= 1 ? true : undefined), 5_000, 'initial watch value');
        checkEqual(seen[0], null, 'initial state of a free key');
        const la = await a.tryAcquire(key, { value: 'A' });
        check(la, 'a acquires');
        await eventually(
          async () => (seen.at(-1)?.sessionId === a.id ? true : undefined),
          5_000,
          'watch sees A',
        );
        await la.release();
        const lb = await b.tryAcquire(key, { value: 'B' });
        check(lb, 'b acquires');
        await eventually(
          async () => (seen.at(-1)?.sessionId === b.id ? true : undefined),
          5_000,
          'watch sees B',
        );
        const fences = seen.filter((h): h is LockHolder => h !== null).map((h) => h.fence);
        for (let i = 1; i < fences.length; i++) {
          check(fences[i]! >= fences[i - 1]!, `watch went backwards: ${fences.join(',')}`);
        }
        checkEqual(seen.at(-1)?.value, 'B', 'latest value');
      } finally {
        controller.abort();
        await done;
      }
    },
  );

  defineCase(test, factory, options, 'watch: ends promptly when its signal aborts', async (ctx) => {
    const controller = new AbortController();
    const iterator = ctx.harness.provider.watch(ctx.key(), { signal: controller.signal, pollIntervalMs: 50 });
    const consumer = (async () => {
      let count = 0;
      for await (const _ of iterator) count++;
      return count;
    })();
    await new Promise((r) => setTimeout(r, 100));
    controller.abort();
    const ended = await Promise.race([
      consumer.then(() => true),
      new Promise((r) => setTimeout(() => r(false), 10_000)),
    ]);
    check(ended, 'watch iteration must end after abort');
  });

  defineCase(
    test,
    factory,
    options,
    'watch: an abort while a read is on its way, or while a value waits to be taken, still ends it',
    async (ctx) => {
      const provider = ctx.harness.provider;
      const key = ctx.key();
      // A held key: no change will come to wake a watch that missed its abort.
      const a = await ctx.open();
      check(await a.tryAcquire(key), 'acquire');
      const bound = 5_000;
      // The abort lands while the first read of the key is under way.
      const early = new AbortController();
      const duringRead = provider.watch(key, { signal: early.signal, pollIntervalMs: 50 });
      const first = duringRead[Symbol.asyncIterator]();
      const pending = first.next();
      early.abort(new Error('gave up during the first read'));
      await pending.catch(() => undefined);
      check(
        await endsWithin(first, bound),
        `a watch aborted during its first read still ran ${bound} ms later`,
      );
      // The abort lands after a value was delivered, before the consumer asks for the next one.
      const late = new AbortController();
      const afterValue = provider.watch(key, { signal: late.signal, pollIntervalMs: 50 });
      const second = afterValue[Symbol.asyncIterator]();
      const current = await second.next();
      checkEqual(current.done ? undefined : current.value?.sessionId, a.id, 'the first value: the holder');
      late.abort(new Error('gave up after a value'));
      check(
        await endsWithin(second, bound),
        `a watch aborted after delivering a value still ran ${bound} ms later`,
      );
    },
  );

  defineCase(
    test,
    factory,
    options,
    'list: returns held keys under a prefix (when supported)',
    async (ctx) => {
      const provider = ctx.harness.provider;
      if (!provider.capabilities.list || !provider.list) return;
      const a = await ctx.open();
      const keys = [ctx.key('l/1'), ctx.key('l/2')];
      for (const key of keys) check(await a.tryAcquire(key), 'acquire');
      const listed = await provider.list(ctx.key('l/'));
      checkEqual(listed.length, 2, 'listed count');
      check(
        listed.every((h) => keys.includes(h.key) && h.sessionId === a.id),
        'listed entries',
      );
    },
  );
}

/**
 * Whether `iterator` finishes (or fails) within `ms`, taking whatever values it still delivers: an aborted
 * watch may hand over a value it had already read, but must then end.
 */
async function endsWithin(iterator: AsyncIterator<unknown>, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  for (;;) {
    const left = deadline - performance.now();
    if (left <= 0) return false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), left);
    });
    const step = await Promise.race([
      iterator.next().then(
        (result) => (result.done ? 'done' : 'value'),
        () => 'done' as const,
      ),
      late,
    ]);
    clearTimeout(timer);
    if (step === 'late') {
      // Ask the iterator to finish; a watch stuck in a wait may not answer, so do not wait for it.
      void iterator.return?.()?.catch(() => undefined);
      return false;
    }
    if (step === 'done') return true;
  }
}
