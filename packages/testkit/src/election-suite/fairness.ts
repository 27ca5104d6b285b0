import type { Leadership, LockSession } from '@baton/core';
import { check, checkEqual, defineCase, delay, eventually } from '../lock-suite/context.js';
import { handoverBoundMs, openLong, waitersOf } from '../lock-suite/fairness.js';
import type { LockHarnessFactory, TestFn } from '../lock-suite/types.js';
import { electionFor } from './support.js';
import { BeliefTracker } from './tracker.js';
import type { ElectionSuiteOptions } from './types.js';

/**
 * On a backend with the `fairQueue` capability, campaigners take turns: a leader that resigns and
 * campaigns again at once goes behind everyone already campaigning, so leadership rotates in a fixed order.
 * Each leader resigns only once every other participant is in line, so the order is fully determined. The
 * sessions live at least `LINE_TTL_MS`: the case is about order, not about renewals on a starved machine.
 */
export function electionFairnessTests(
  test: TestFn,
  factory: LockHarnessFactory,
  options: ElectionSuiteOptions,
): void {
  const participants = options.contention?.participants ?? 4;
  const rounds = 3;
  defineCase(
    test,
    factory,
    options,
    `election: campaigners take turns in arrival order (${participants} campaigners, ${rounds} rounds)`,
    async (ctx) => {
      if (!ctx.harness.provider.capabilities.fairQueue) return;
      const election = electionFor(ctx);
      const key = election.key;
      const terms = participants * rounds;
      const tracker = new BeliefTracker();
      const stop = new AbortController();
      const sessions: LockSession[] = [];
      for (let i = 0; i < participants; i++) sessions.push(await openLong(ctx, { lockDelayMs: 0 }));
      const others = (self: LockSession) => sessions.filter((s) => s !== self).map((s) => s.id);
      const participant = async (name: string, session: LockSession) => {
        while (!stop.signal.aborted) {
          let leadership: Leadership;
          try {
            leadership = await election.campaign(session, { value: { id: name }, signal: stop.signal });
          } catch (error) {
            if (stop.signal.aborted) return;
            throw error;
          }
          tracker.elected(name, leadership);
          if (tracker.intervals.length >= terms) stop.abort();
          // Resign only once everyone else waits in line, so this leader's next place is behind all of them.
          await eventually(
            async () => {
              const waiting = await waitersOf(ctx, key);
              return others(session).every((id) => waiting.includes(id)) || stop.signal.aborted
                ? true
                : undefined;
            },
            handoverBoundMs(ctx, session.ttlMs) * participants + 5_000,
            `every other campaigner to wait in line behind ${name}`,
            ctx.options.granularityMs,
          );
          await delay(Math.random() * ctx.options.granularityMs);
          check(!leadership.signal.aborted, `${name} lost leadership (term ${leadership.term}) while live`);
          await leadership.resign();
        }
      };
      await Promise.all(sessions.map((session, i) => participant(`p${i}`, session)));
      tracker.assertOneAtATime();
      const order = tracker.intervals.map((i) => i.participant);
      checkEqual(order.length, terms, 'terms elected');
      check(
        new Set(order.slice(0, participants)).size === participants,
        `leadership did not rotate in arrival order: ${order.join(' ')} (the first ${participants} terms should go to ${participants} different campaigners)`,
      );
      for (let i = participants; i < order.length; i++) {
        check(
          order[i] === order[i - participants],
          `leadership did not rotate in arrival order: ${order.join(' ')} (term ${i + 1} went to ${order[i]}, expected ${order[i - participants]})`,
        );
      }
    },
  );
}
