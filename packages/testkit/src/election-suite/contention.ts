import { type Election, isBatonError, type Leadership, type LockSession } from '@baton/core';
import { aborted, check, checkEqual, defineCase, delay, eventually } from '../lock-suite/context.js';
import type { LockHarnessFactory, TestFn } from '../lock-suite/types.js';
import { electionFor } from './support.js';
import { BeliefTracker } from './tracker.js';
import type { ElectionSuiteOptions } from './types.js';

/** Several participants campaigning at once, with resignations and crashes. */
export function electionContentionTests(
  test: TestFn,
  factory: LockHarnessFactory,
  options: ElectionSuiteOptions,
): void {
  const participants = options.contention?.participants ?? 4;
  const terms = options.contention?.terms ?? 16;
  const crashes = Math.min(options.contention?.crashes ?? 2, terms - 1);
  const crashEvery = crashes > 0 ? Math.floor(terms / (crashes + 1)) : Number.POSITIVE_INFINITY;
  defineCase(
    test,
    factory,
    options,
    `election: one leader at a time: ${participants} campaigners, ${terms} terms, ${crashes} crashes`,
    async (ctx) => {
      const election = electionFor(ctx);
      const tracker = new BeliefTracker();
      const stop = new AbortController();
      let crashed = 0;
      let sessionsLost = 0;
      const participant = async (name: string) => {
        let session: LockSession = await ctx.open({ lockDelayMs: 0 });
        while (!stop.signal.aborted) {
          if (session.signal.aborted) {
            // A session lost under load (missed renewals) costs leadership, not safety: rejoin.
            sessionsLost++;
            session = await ctx.open({ lockDelayMs: 0 });
          }
          const leadership = await campaign(election, session, name, stop.signal);
          if (leadership === 'session lost') continue;
          if (!leadership) return;
          tracker.elected(name, leadership);
          const term = tracker.intervals.length;
          if (term >= terms) stop.abort();
          await delay(Math.random() * ctx.options.granularityMs);
          check(tracker.violations.length === 0, tracker.violations.join('; '));
          if (leadership.signal.aborted) {
            // The lease monitor may notice a lost session a moment before the keep-alive does.
            await aborted(session.signal, ctx.options.granularityMs * 2 + 200, 'session').catch(
              () => undefined,
            );
            check(
              session.signal.aborted,
              `${name}'s leadership (term ${leadership.term}) was taken away while its session was live: ` +
                String(leadership.signal.reason),
            );
            continue;
          }
          if (crashed < Math.floor(term / crashEvery) && crashed < crashes && term < terms) {
            crashed++;
            tracker.crashed(name);
            await ctx.harness.crash(session);
            // A crashed process comes back after its peers noticed: it sits out the takeover. (Rejoining at
            // once, it raced the waiters with a fresh poll interval; on a backend without a fair line it could
            // win every takeover, and with resigners re-winning at once, hold every term: a flaky run.)
            while (tracker.intervals.length <= term && !stop.signal.aborted) await delay(10);
            session = await ctx.open({ lockDelayMs: 0 });
          } else {
            await leadership.resign();
          }
        }
      };
      await Promise.all(Array.from({ length: participants }, (_, i) => participant(`p${i}`)));
      checkEqual(tracker.intervals.length, terms, 'terms elected');
      checkEqual(crashed, crashes, 'terms ended by a crash');
      check(sessionsLost <= participants, `${sessionsLost} sessions lost during a short contended run`);
      tracker.assertOneAtATime();
      check(
        new Set(tracker.intervals.map((i) => i.participant)).size > 1,
        'leadership should move between participants',
      );
      await eventually(
        async () => ((await election.leader()) === null ? true : undefined),
        ctx.options.granularityMs * 4 + 2_000,
        'no leader once everyone stopped',
      );
    },
  );
}

async function campaign(
  election: Election,
  session: LockSession,
  name: string,
  stop: AbortSignal,
): Promise<Leadership | 'session lost' | undefined> {
  try {
    return await election.campaign(session, { value: { id: name }, signal: stop });
  } catch (error) {
    if (isBatonError(error, 'ABORTED') && stop.aborted) return undefined;
    if (session.signal.aborted) return 'session lost';
    throw error;
  }
}
