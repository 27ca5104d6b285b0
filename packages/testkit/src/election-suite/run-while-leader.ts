import { runWhileLeader } from '@baton/core';
import { check, checkEqual, defineCase, delay } from '../lock-suite/context.js';
import type { LockHarnessFactory, TestFn } from '../lock-suite/types.js';
import { electionFor, waitFor } from './support.js';
import { BeliefTracker } from './tracker.js';
import type { ElectionSuiteOptions } from './types.js';

/** `runWhileLeader`: one task at a time, clean step-down, takeover after a crash. */
export function runWhileLeaderTests(
  test: TestFn,
  factory: LockHarnessFactory,
  options: ElectionSuiteOptions,
): void {
  defineCase(
    test,
    factory,
    options,
    'election: runWhileLeader runs one task at a time and steps down cleanly when stopped',
    async (ctx) => {
      const election = electionFor(ctx);
      const tracker = new BeliefTracker();
      const stops = [new AbortController(), new AbortController(), new AbortController()];
      const running: string[] = [];
      const released: string[] = [];
      let current: number | undefined;
      const runs = stops.map((stop, i) =>
        runWhileLeader(
          ctx.harness.provider,
          election.key,
          async (leadership) => {
            tracker.elected(`r${i}`, leadership);
            running.push(`r${i}`);
            current = i;
            await new Promise((resolve) =>
              leadership.signal.addEventListener('abort', resolve, { once: true }),
            );
            // Winding down after the signal: nobody else may lead until this returns.
            await delay(ctx.options.granularityMs);
            if (stop.signal.aborted && (await election.leader())?.term !== leadership.term) {
              released.push(`r${i}`);
            }
            if (current === i) current = undefined;
          },
          { signal: stop.signal, value: { id: `r${i}` }, sessionOptions: ctx.harness.sessionOptions },
        ),
      );
      try {
        for (let round = 0; round < 3; round++) {
          await waitFor(() => current !== undefined && !stops[current]!.signal.aborted, `leader ${round}`);
          const leader = current!;
          stops[leader]!.abort();
          await runs[leader];
        }
        await Promise.all(runs);
      } finally {
        for (const stop of stops) stop.abort();
        await Promise.allSettled(runs);
      }
      checkEqual(new Set(running).size, 3, 'each participant led');
      checkEqual(released.join(), '', 'participants whose lock was released before their task returned');
      tracker.assertOneAtATime();
      checkEqual(await election.leader(), null, 'nobody leads after everyone stopped');
    },
  );

  defineCase(
    test,
    factory,
    options,
    'election: runWhileLeader takes over from a crashed leader within the expiry bound',
    async (ctx) => {
      const election = electionFor(ctx);
      const native = ctx.harness.provider.capabilities.nativeWatch;
      const bound =
        ctx.options.expiryBoundMs + (native ? 0 : ctx.ttlMs * 0.5) + ctx.options.granularityMs * 2 + 1_000;
      const crashed = await ctx.open({ lockDelayMs: 0 });
      const first = await election.campaign(crashed, { value: { id: 'crashed' } });
      const stop = new AbortController();
      let electedAt = 0;
      let term = 0;
      const running = runWhileLeader(
        await ctx.open({ lockDelayMs: 0 }),
        election.key,
        async (leadership) => {
          electedAt = performance.now();
          term = leadership.term;
          await new Promise((resolve) =>
            leadership.signal.addEventListener('abort', resolve, { once: true }),
          );
        },
        { signal: stop.signal, value: { id: 'successor' } },
      );
      await delay(Math.min(ctx.ttlMs / 4, 200));
      const crashedAt = performance.now();
      await ctx.harness.crash(crashed);
      await waitFor(() => electedAt > 0, 'the successor leads', bound * 3 + 10_000);
      check(
        electedAt - crashedAt <= bound,
        `took over ${Math.round(electedAt - crashedAt)} ms after the crash`,
      );
      check(term > first.term, 'successor term');
      checkEqual((await election.leader())?.id, 'successor', 'leader() after takeover');
      stop.abort();
      await running;
    },
  );
}
