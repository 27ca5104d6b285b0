import { check, checkEqual, defineCase } from './context.js';
import type { LockHarnessFactory, LockSuiteOptions, TestFn } from './types.js';

/** Exclusivity: while one session holds a key, every other attempt gets `null`. */
export function exclusivityTests(test: TestFn, factory: LockHarnessFactory, options: LockSuiteOptions): void {
  defineCase(
    test,
    factory,
    options,
    'exclusivity: a second session gets null while the key is held',
    async (ctx) => {
      const [a, b] = [await ctx.open(), await ctx.open()];
      const key = ctx.key();
      const lease = await a.tryAcquire(key);
      check(lease, 'first tryAcquire on a free key must succeed');
      checkEqual(await b.tryAcquire(key), null, 'second session must get null');
      const stored = await ctx.harness.inspect(key);
      checkEqual(stored?.holder, a.id, 'backend must record the first session as holder');
    },
  );

  defineCase(
    test,
    factory,
    options,
    'exclusivity: leases are not re-entrant within one session',
    async (ctx) => {
      const a = await ctx.open();
      const key = ctx.key();
      check(await a.tryAcquire(key), 'first acquire');
      checkEqual(await a.tryAcquire(key), null, 'the same session taking the key again must get null');
    },
  );

  defineCase(
    test,
    factory,
    options,
    'exclusivity: many sessions racing for one key, exactly one wins',
    async (ctx) => {
      const sessions = await Promise.all(Array.from({ length: 6 }, () => ctx.open()));
      const key = ctx.key();
      const results = await Promise.all(sessions.map((s) => s.tryAcquire(key)));
      checkEqual(results.filter(Boolean).length, 1, 'winners');
    },
  );
}

/** Independent keys do not interfere. */
export function independentKeysTests(
  test: TestFn,
  factory: LockHarnessFactory,
  options: LockSuiteOptions,
): void {
  defineCase(test, factory, options, 'independent keys: two sessions hold two keys at once', async (ctx) => {
    const [a, b] = [await ctx.open(), await ctx.open()];
    const la = await a.tryAcquire(ctx.key('one'));
    const lb = await b.tryAcquire(ctx.key('two'));
    check(la && lb, 'both acquisitions must succeed');
    check(!la.signal.aborted && !lb.signal.aborted, 'both leases are live');
  });

  defineCase(test, factory, options, 'independent keys: one session holds many keys', async (ctx) => {
    const a = await ctx.open();
    const leases = await Promise.all(Array.from({ length: 10 }, (_, i) => a.tryAcquire(ctx.key(`m${i}`))));
    check(
      leases.every((l) => l !== null),
      'all ten keys acquired',
    );
    checkEqual(a.leases().length, 10, 'session.leases() count');
  });

  defineCase(
    test,
    factory,
    options,
    'independent keys: keys with awkward characters are distinct',
    async (ctx) => {
      const a = await ctx.open();
      const b = await ctx.open();
      const k1 = ctx.key('task/42 é:*?#');
      const k2 = ctx.key('task/42 e:*?#');
      check(await a.tryAcquire(k1), 'first awkward key');
      check(await b.tryAcquire(k2), 'second awkward key must not collide with the first');
      const holder = await ctx.harness.provider.getHolder(k1);
      checkEqual(holder?.key, k1, 'getHolder reports the caller key unchanged');
    },
  );

  defineCase(
    test,
    factory,
    options,
    'independent keys: a key with a lone UTF-16 surrogate is refused with INVALID_ARGUMENT everywhere',
    async (ctx) => {
      const a = await ctx.open();
      const provider = ctx.harness.provider;
      // Backends that store UTF-8 would turn both into U+FFFD: three keys, one lock.
      for (const bad of [ctx.key('dup\ud800'), ctx.key('dup\udfff'), ctx.key('\udfff\ud800')]) {
        const shown = JSON.stringify(bad);
        await refusedAsInvalid(a.tryAcquire(bad), `tryAcquire(${shown})`);
        await refusedAsInvalid(a.acquire(bad, { timeoutMs: 1_000 }), `acquire(${shown})`);
        await refusedAsInvalid(provider.getHolder(bad), `getHolder(${shown})`);
        await refusedAsInvalid(
          (async () => {
            for await (const _ of provider.watch(bad)) break;
          })(),
          `watch(${shown})`,
        );
      }
      checkEqual(a.leases().length, 0, 'nothing was acquired under a refused key');
      const replacement = await a.tryAcquire(ctx.key('dup\ufffd'));
      check(replacement, 'the well-formed key with U+FFFD itself is a valid key');
      const pair = await a.tryAcquire(ctx.key('dup\ud83d\ude00'));
      check(pair, 'a key with a surrogate pair (an emoji) is a valid key, distinct from the U+FFFD one');
    },
  );
}

async function refusedAsInvalid(promise: Promise<unknown>, what: string): Promise<void> {
  let error: unknown;
  try {
    await promise;
  } catch (caught) {
    error = caught;
  }
  check(error !== undefined, `${what} must reject, not succeed`);
  checkEqual((error as { code?: unknown }).code, 'INVALID_ARGUMENT', `${what} error code`);
}

/** Release: idempotent, conditional, and lets others in. */
export function releaseTests(test: TestFn, factory: LockHarnessFactory, options: LockSuiteOptions): void {
  if (!options.retainsReleasedKeys) {
    defineCase(
      test,
      factory,
      options,
      'release: no key left behind (40 keys taken and released by 4 sessions leave no record)',
      async (ctx) => {
        const sessions = [await ctx.open(), await ctx.open(), await ctx.open(), await ctx.open()];
        const keys = Array.from({ length: 40 }, (_, i) => ctx.key(`task-${i}`));
        await Promise.all(
          sessions.map(async (session, s) => {
            for (let i = s; i < keys.length; i += sessions.length) {
              const lease = await session.tryAcquire(keys[i]!);
              check(lease, `acquire ${keys[i]}`);
              checkEqual(await lease.release(), true, `release ${keys[i]}`);
            }
          }),
        );
        const left: string[] = [];
        for (const key of keys) if ((await ctx.harness.inspect(key)) !== null) left.push(key);
        checkEqual(
          left.length,
          0,
          `keys the backend still keeps a record of after their release (${left.slice(0, 3).join(', ')}...)`,
        );
      },
    );
  }

  defineCase(
    test,
    factory,
    options,
    'release: another session can acquire right after a release',
    async (ctx) => {
      const [a, b] = [await ctx.open(), await ctx.open()];
      const key = ctx.key();
      const lease = await a.tryAcquire(key);
      check(lease, 'acquire');
      checkEqual(await lease.release(), true, 'release result');
      check(
        await b.tryAcquire(key),
        'second session acquires after release (no lock-delay on clean release)',
      );
    },
  );

  defineCase(
    test,
    factory,
    options,
    'release: the same session can re-acquire after release',
    async (ctx) => {
      const a = await ctx.open();
      const key = ctx.key();
      const first = await a.tryAcquire(key);
      check(first, 'acquire');
      await first.release();
      const second = await a.tryAcquire(key);
      check(second, 're-acquire by the same session');
    },
  );

  defineCase(
    test,
    factory,
    options,
    'release: is idempotent and reports only the first release',
    async (ctx) => {
      const a = await ctx.open();
      const lease = await a.tryAcquire(ctx.key());
      check(lease, 'acquire');
      const [r1, r2] = await Promise.all([lease.release(), lease.release()]);
      checkEqual(r1, true, 'concurrent first release');
      checkEqual(r2, true, 'concurrent calls share one release');
      checkEqual(await lease.release(), true, 'later calls return the same settled result');
      checkEqual(a.leases().length, 0, 'lease removed from the session');
    },
  );

  defineCase(test, factory, options, 'release: aborts the lease signal with LEASE_RELEASED', async (ctx) => {
    const a = await ctx.open();
    const lease = await a.tryAcquire(ctx.key());
    check(lease, 'acquire');
    await lease.release();
    check(lease.signal.aborted, 'signal aborted after release');
    checkEqual((lease.signal.reason as { code?: string }).code, 'LEASE_RELEASED', 'abort reason code');
  });

  defineCase(test, factory, options, 'release: await using disposes (releases) the lease', async (ctx) => {
    const [a, b] = [await ctx.open(), await ctx.open()];
    const key = ctx.key();
    {
      const lease = await a.tryAcquire(key);
      check(lease, 'acquire');
      await lease[Symbol.asyncDispose]();
    }
    check(await b.tryAcquire(key), 'key free after dispose');
  });

  defineCase(
    test,
    factory,
    options,
    'release: never releases a lock someone else now holds (conditional on owner)',
    async (ctx) => {
      const [a, b] = [await ctx.open({ lockDelayMs: 0 }), await ctx.open()];
      const key = ctx.key();
      const stale = await a.tryAcquire(key);
      check(stale, 'first holder acquires');
      await ctx.harness.crash(a);
      const deadline = performance.now() + ctx.options.expiryBoundMs * 3 + 5_000;
      let lease = null;
      while (!lease && performance.now() < deadline) {
        lease = await b.tryAcquire(key);
        if (!lease) await new Promise((r) => setTimeout(r, ctx.options.granularityMs));
      }
      check(lease, 'second session takes the key after the first one crashed');
      const released = await stale.release().catch(() => false);
      checkEqual(released, false, "the stale holder's release must not succeed");
      const stored = await ctx.harness.inspect(key);
      checkEqual(stored?.holder, b.id, 'the new holder still holds the key at the backend');
      check(!lease.signal.aborted, "the new holder's lease is unaffected");
    },
  );
}
