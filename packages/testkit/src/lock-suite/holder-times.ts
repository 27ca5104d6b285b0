import type { LockHolder, LockProvider } from '@baton/core';
import { check, checkEqual, defineCase, delay, eventually, type SuiteContext } from './context.js';
import type { LockHarnessFactory, LockSuiteOptions, TestFn } from './types.js';

/**
 * What a holder says about its own times (capability `holderTimes`): the acquisition time and the remaining
 * lease, from the backend's own data. Every server the suite runs against is local, so an acquisition time
 * must fall inside the acquire call's window on this machine's clock (`Date.now()`, not the provider's
 * clock, which a harness may fake), give or take {@link LockSuiteOptions.holderClockSkewMs}. Backends without the capability must not half-report: a time
 * comes with its source, and a remaining lease is one figure, never two.
 */
export function holderTimesTests(test: TestFn, factory: LockHarnessFactory, options: LockSuiteOptions): void {
  defineCase(
    test,
    factory,
    options,
    'holder times: acquiredAt falls in the acquire call, the same through getHolder, list and watch',
    async (ctx) => {
      const provider = ctx.harness.provider;
      const session = await ctx.open();
      const key = ctx.key();
      const before = Date.now();
      const lease = await session.tryAcquire(key, { value: 'v1' });
      const after = Date.now();
      check(lease, 'acquire');
      const holder = await provider.getHolder(key);
      check(holder, 'holder present');
      checkShape(holder, provider);
      const plain = await provider.getHolder(key, { times: false });
      check(plain, 'holder present (times: false)');
      checkShape(plain, { capabilities: { ...provider.capabilities, holderTimes: false } });
      checkEqual(
        `${plain.sessionId} ${plain.fence} ${plain.value}`,
        `${session.id} ${lease.fence} v1`,
        'holder read with times: false',
      );
      if (!provider.capabilities.holderTimes) return;
      const at = holder.acquiredAt;
      check(at !== undefined, 'holderTimes: getHolder reports acquiredAt');
      const skew = skewOf(ctx);
      check(
        at >= before - skew && at <= after + skew,
        `acquiredAt ${at} lies outside the acquire call [${before}, ${after}] (± ${skew} ms)`,
      );
      checkLease(ctx, holder, session.ttlMs);
      if (provider.capabilities.list && provider.list) {
        const listed = (await provider.list(key)).find((h) => h.key === key);
        check(listed, 'list shows the key');
        checkShape(listed, provider);
        checkEqual(listed.acquiredAt, at, 'acquiredAt through list');
        checkEqual(listed.acquiredAtSource, holder.acquiredAtSource, 'acquiredAtSource through list');
        checkLease(ctx, listed, session.ttlMs);
      }
      const watched = await firstWatched(provider, key);
      check(watched, 'watch yields the holder');
      checkShape(watched, provider);
      checkEqual(watched.acquiredAt, at, 'acquiredAt through watch');
      checkLease(ctx, watched, session.ttlMs);
      // Later reads, a publish in between, report the same time: it is the acquisition's, not the read's.
      await delay(skew + 20);
      await lease.publish('v2');
      checkEqual((await provider.getHolder(key))?.acquiredAt, at, 'acquiredAt after publish (same fence)');
    },
  );

  defineCase(test, factory, options, 'holder times: a new acquisition has a new acquiredAt', async (ctx) => {
    const provider = ctx.harness.provider;
    if (!provider.capabilities.holderTimes) return;
    const [a, b] = [await ctx.open(), await ctx.open()];
    const key = ctx.key();
    const first = await a.tryAcquire(key);
    check(first, 'first acquire');
    const firstAt = (await provider.getHolder(key))?.acquiredAt;
    check(firstAt !== undefined, 'acquiredAt of the first acquisition');
    await first.release();
    await delay(skewOf(ctx) + 20);
    const before = Date.now();
    const second = await eventually(async () => (await b.tryAcquire(key)) ?? undefined, 5_000, 'reacquire');
    const holder = await provider.getHolder(key);
    checkEqual(holder?.fence, second.fence, 'holder fence');
    const secondAt = holder?.acquiredAt;
    check(secondAt !== undefined, 'acquiredAt of the second acquisition');
    check(
      secondAt > firstAt && secondAt >= before - skewOf(ctx),
      `the second acquisition reports acquiredAt ${secondAt}, the first ${firstAt}, the second began at ${before}`,
    );
  });

  defineCase(
    test,
    factory,
    options,
    'holder times: the remaining lease stays up while the holder renews, and runs down once it stops',
    async (ctx) => {
      const provider = ctx.harness.provider;
      if (!provider.capabilities.holderTimes) return;
      const session = await ctx.open({ lockDelayMs: 0 });
      const key = ctx.key();
      const lease = await session.tryAcquire(key);
      check(lease, 'acquire');
      const ttl = session.ttlMs;
      const samples: number[] = [];
      const started = performance.now();
      while (performance.now() - started < ttl * 2.5) {
        const holder = await provider.getHolder(key);
        checkEqual(holder?.fence, lease.fence, 'the renewing holder still holds the key');
        check(holder, 'holder');
        samples.push(checkLease(ctx, holder, ttl));
        await delay(ttl / 8);
      }
      // Read after two and a half TTLs: a figure that only counted down from the acquisition would be 0 now.
      check(samples.at(-1)! > 0, 'remaining lease of a holder that renews, after 2.5 TTL');
      if (isExact(await provider.getHolder(key)) && resolutionOf(ctx) < ttl / 2) {
        const rose = samples.some((value, i) => i > 0 && value > samples[i - 1]! + ctx.options.granularityMs);
        check(rose, `the remaining lease never went back up while the holder renewed: ${samples.join(', ')}`);
      }
      await ctx.harness.crash(session);
      const first = await provider.getHolder(key);
      if (!first || !isExact(first)) return;
      const r1 = first.leaseRemainingMs ?? 0;
      const waited = Math.min(ttl / 3, r1 / 2);
      const t1 = performance.now();
      await delay(waited);
      const second = await provider.getHolder(key);
      const elapsed = performance.now() - t1;
      if (!second || second.fence !== lease.fence) return;
      const r2 = second.leaseRemainingMs ?? 0;
      const slack = resolutionOf(ctx) + ctx.options.granularityMs;
      check(
        r2 <= r1 - elapsed + slack,
        `remaining lease of a holder that stopped renewing went from ${r1} to ${r2} ms in ${Math.round(elapsed)} ms`,
      );
    },
  );
}

function skewOf(ctx: SuiteContext): number {
  return ctx.options.holderClockSkewMs ?? 100;
}

function resolutionOf(ctx: SuiteContext): number {
  return ctx.options.leaseResolutionMs ?? ctx.options.granularityMs;
}

function isExact(holder: LockHolder | null): boolean {
  return holder?.leaseRemainingMs !== undefined;
}

/** Time fields come whole: a time with its source, one remaining-lease figure (or none). */
function checkShape(holder: LockHolder, provider: Pick<LockProvider, 'capabilities'>): void {
  checkEqual(
    holder.acquiredAt === undefined,
    holder.acquiredAtSource === undefined,
    'acquiredAt and acquiredAtSource come together (acquiredAt absent)',
  );
  if (holder.acquiredAtSource !== undefined) {
    check(
      holder.acquiredAtSource === 'server' || holder.acquiredAtSource === 'holder',
      `acquiredAtSource ${String(holder.acquiredAtSource)}`,
    );
  }
  check(
    holder.leaseRemainingMs === undefined || holder.leaseRemainingAtMostMs === undefined,
    'a holder reports leaseRemainingMs or leaseRemainingAtMostMs, not both',
  );
  if (provider.capabilities.holderTimes) {
    check(
      holder.leaseRemainingMs !== undefined || holder.leaseRemainingAtMostMs !== undefined,
      'holderTimes: the holder reports leaseRemainingMs or leaseRemainingAtMostMs',
    );
  }
}

/**
 * The remaining lease is in (0, expiry bound]: a live holder's key is not free yet, and nothing the backend
 * does keeps an unrenewed key longer than the suite's expiry bound. Returns the figure.
 */
function checkLease(ctx: SuiteContext, holder: LockHolder, ttlMs: number): number {
  const value = holder.leaseRemainingMs ?? holder.leaseRemainingAtMostMs;
  check(value !== undefined, 'remaining lease reported');
  const bound = Math.max(ctx.options.expiryBoundMs, ttlMs) + ctx.options.granularityMs;
  check(
    Number.isFinite(value) && value > 0 && value <= bound,
    `remaining lease ${value} ms of a live holder is outside (0, ${bound}] ms`,
  );
  return value;
}

async function firstWatched(provider: LockProvider, key: string): Promise<LockHolder | null> {
  const stop = new AbortController();
  try {
    for await (const holder of provider.watch(key, { signal: stop.signal, pollIntervalMs: 50 }))
      return holder;
    return null;
  } finally {
    stop.abort();
  }
}
