import type { Leadership } from '@baton/core';
import { aborted, check, checkEqual, defineCase, delay } from '../lock-suite/context.js';
import type { LockHarnessFactory, TestFn } from '../lock-suite/types.js';
import { deadline, electionFor, timed } from './support.js';
import { BeliefTracker } from './tracker.js';
import type { ElectionSuiteOptions } from './types.js';

/** How leadership moves on: resignation, crash, lost contact. */
export function electionHandoverTests(
  test: TestFn,
  factory: LockHarnessFactory,
  options: ElectionSuiteOptions,
): void {
  defineCase(
    test,
    factory,
    options,
    'election: a live leader keeps leading past its TTL while others campaign',
    async (ctx) => {
      const election = electionFor(ctx);
      const tracker = new BeliefTracker();
      const a = await election.campaign(await ctx.open(), { value: { id: 'a' } });
      tracker.elected('a', a);
      const stop = new AbortController();
      const waiting = election.campaign(await ctx.open(), { value: { id: 'b' }, signal: stop.signal }).then(
        (b) => tracker.elected('b', b),
        (error: unknown) => error,
      );
      await delay(ctx.ttlMs * 2.5);
      check(
        !a.signal.aborted,
        `leadership lost after ${ctx.ttlMs * 2.5} ms of renewals: ${String(a.signal.reason)}`,
      );
      checkEqual((await election.leader())?.term, a.term, 'leader() still reports the first term');
      stop.abort();
      checkEqual(
        ((await waiting) as { code?: string } | undefined)?.code,
        'ABORTED',
        'the contender never won',
      );
      tracker.assertOneAtATime();
    },
  );

  defineCase(
    test,
    factory,
    options,
    'election: handover on resign is prompt, and the old leader stops first',
    async (ctx) => {
      const election = electionFor(ctx);
      const native = ctx.harness.provider.capabilities.nativeWatch;
      const bound =
        options.resignHandoverBoundMs ?? ctx.ttlMs * (native ? 0.5 : 0.75) + ctx.options.granularityMs;
      const tracker = new BeliefTracker();
      const [sa, sb] = [await ctx.open(), await ctx.open()];
      const a = await election.campaign(sa, { value: { id: 'a' } });
      tracker.elected('a', a);
      let won = false;
      const next = timed(
        election.campaign(sb, { value: { id: 'b' }, signal: deadline(bound + 20_000) }).then((b) => {
          won = true;
          tracker.elected('b', b);
          return b;
        }),
      );
      await delay(Math.min(ctx.ttlMs / 2, 300));
      check(!won, 'the second campaigner must wait while the first leads');
      const resignedAt = performance.now();
      checkEqual(await a.resign(), true, 'resign released the lock');
      const { leadership: b, at } = await next;
      const took = at - resignedAt;
      check(
        took <= bound,
        `handover took ${Math.round(took)} ms after resign; bound ${Math.round(bound)} ms`,
      );
      check(b.term > a.term, `term ${b.term} must exceed ${a.term}`);
      checkEqual((await election.leader())?.id, 'b', 'leader() after handover');
      tracker.assertOneAtATime();
    },
  );

  defineCase(test, factory, options, 'election: handover on crash within the expiry bound', async (ctx) => {
    const election = electionFor(ctx);
    const native = ctx.harness.provider.capabilities.nativeWatch;
    const bound =
      ctx.options.expiryBoundMs + (native ? 0 : ctx.ttlMs * 0.5) + ctx.options.granularityMs * 2 + 1_000;
    const tracker = new BeliefTracker();
    const [sa, sb] = [await ctx.open({ lockDelayMs: 0 }), await ctx.open({ lockDelayMs: 0 })];
    const a = await election.campaign(sa, { value: { id: 'a' } });
    tracker.elected('a', a);
    const next = timed(
      election.campaign(sb, { value: { id: 'b' }, signal: deadline(bound * 3 + 10_000) }).then((b) => {
        tracker.elected('b', b);
        return b;
      }),
    );
    await delay(Math.min(ctx.ttlMs / 4, 200));
    const crashedAt = performance.now();
    tracker.crashed('a');
    await ctx.harness.crash(sa);
    const { leadership: b, at } = await next;
    const took = at - crashedAt;
    check(
      took <= bound,
      `handover took ${Math.round(took)} ms after the crash; bound ${Math.round(bound)} ms`,
    );
    check(
      took >= ctx.ttlMs * 0.5,
      `handover ${Math.round(took)} ms after the crash is too early for TTL ${ctx.ttlMs} ms`,
    );
    check(b.term > a.term, `term ${b.term} must exceed ${a.term}`);
    checkEqual((await election.leader())?.id, 'b', 'leader() after handover');
    tracker.assertOneAtATime();
  });

  defineCase(
    test,
    factory,
    options,
    'election: a leader that cannot reach the backend stops believing within its TTL, before a successor',
    async (ctx) => {
      const election = electionFor(ctx);
      const tracker = new BeliefTracker();
      const a = await election.campaign(await ctx.open(), { value: { id: 'a' } });
      tracker.elected('a', a);
      const restore = await ctx.harness.breakTransport();
      const brokenAt = performance.now();
      let reason: unknown;
      try {
        reason = await aborted(a.signal, ctx.ttlMs * 2 + 5_000, 'leadership signal');
      } finally {
        await restore();
      }
      const believed = performance.now() - brokenAt;
      check(
        believed <= ctx.ttlMs + ctx.options.granularityMs + 1_500,
        `leadership believed ${Math.round(believed)} ms after the backend became unreachable (TTL ${ctx.ttlMs} ms)`,
      );
      checkEqual((reason as { code?: string }).code, 'LEASE_LOST', 'abort reason');
      const bound = ctx.options.expiryBoundMs * 2 + 10_000;
      const b: Leadership = await election.campaign(await ctx.open(), {
        value: { id: 'b' },
        signal: deadline(bound),
      });
      tracker.elected('b', b);
      check(b.term > a.term, `term ${b.term} must exceed ${a.term}`);
      tracker.assertOneAtATime();
    },
  );
}
