import type { Election, LeaderInfo, Leadership, LockSession } from '@baton/core';
import { check, checkEqual, defineCase, delay } from '../lock-suite/context.js';
import type { LockHarnessFactory, TestFn } from '../lock-suite/types.js';
import { electionFor, waitFor as waitForDefault } from './support.js';
import type { ElectionSuiteOptions } from './types.js';

/** Observers get one watch round trip (or poll) per change; this is generous. */
const waitFor = (probe: () => boolean, what: string) => waitForDefault(probe, what, 5_000);

/** An observer that records everything `observe()` yields until stopped. */
class Observer {
  readonly seen: Array<LeaderInfo | null> = [];
  readonly #controller = new AbortController();
  readonly #done: Promise<void>;

  constructor(election: Election) {
    this.#done = (async () => {
      for await (const info of election.observe({ signal: this.#controller.signal, pollIntervalMs: 50 })) {
        this.seen.push(info);
      }
    })();
  }

  get last(): LeaderInfo | null | undefined {
    return this.seen.at(-1);
  }

  async stop(): Promise<void> {
    this.#controller.abort();
    await this.#done;
  }

  /** Terms only ever grow; a term never returns after `null` ended it; no state is repeated. */
  checkOrder(label: string): void {
    let highest = Number.NEGATIVE_INFINITY;
    let ended = false;
    let previous: string | undefined;
    for (const info of this.seen) {
      const fingerprint = info === null ? 'null' : `${info.term}:${JSON.stringify(info)}`;
      check(fingerprint !== previous, `${label}: repeated state ${fingerprint}`);
      previous = fingerprint;
      if (info === null) {
        ended = true;
        continue;
      }
      check(info.term >= highest, `${label}: term ${info.term} after ${highest}`);
      check(!(info.term === highest && ended), `${label}: ended term ${info.term} reported again`);
      if (info.term > highest) ended = false;
      highest = info.term;
    }
  }
}

/** `observe()`: ordered, complete when terms last long enough, and always ending on the current leader. */
export function electionObserveTests(
  test: TestFn,
  factory: LockHarnessFactory,
  options: ElectionSuiteOptions,
): void {
  defineCase(
    test,
    factory,
    options,
    'election: observers see every term in increasing order and end on the current leader',
    async (ctx) => {
      const election = electionFor(ctx);
      const sessions: LockSession[] = [await ctx.open(), await ctx.open(), await ctx.open()];
      const observer = new Observer(election);
      try {
        await waitFor(() => observer.seen.length > 0, 'the first observation');
        checkEqual(observer.seen[0], null, 'first observation of an uncontested election');
        const elected: number[] = [];
        let current: Leadership = await election.campaign(sessions[0]!, { value: { id: 's0' } });
        elected.push(current.term);
        for (let i = 1; i <= 4; i++) {
          const term = current.term;
          await waitFor(() => observer.last?.term === term, `observer sees term ${term}`);
          const next = election.campaign(sessions[i % 3]!, { value: { id: `s${i % 3}` } });
          await delay(ctx.options.granularityMs);
          await current.resign();
          current = await next;
          elected.push(current.term);
        }
        const lastTerm = current.term;
        await waitFor(() => observer.last?.term === lastTerm, 'observer ends on the current leader');
        observer.checkOrder('observer');
        const observedTerms = new Set(observer.seen.map((info) => info?.term));
        for (const term of elected) check(observedTerms.has(term), `term ${term} was never observed`);
        checkEqual(
          JSON.stringify(observer.last),
          JSON.stringify(await election.leader()),
          'ends on leader()',
        );

        const late = new Observer(election);
        await waitFor(() => late.seen.length > 0, 'the late observer starts');
        checkEqual(late.seen[0]?.term, lastTerm, 'a late observer starts with the current leader');
        await late.stop();

        await current.resign();
        await waitFor(() => observer.last === null, 'observer sees that nobody leads');
        observer.checkOrder('observer');
      } finally {
        await observer.stop();
      }
    },
  );

  defineCase(
    test,
    factory,
    options,
    'election: observers never go back in time while leadership churns',
    async (ctx) => {
      const election = electionFor(ctx);
      const sessions: LockSession[] = [];
      for (let i = 0; i < 3; i++) sessions.push(await ctx.open());
      const observers = [new Observer(election), new Observer(election)];
      try {
        let last: Leadership | undefined;
        for (let round = 0; round < 12; round++) {
          const leadership = await election.campaign(sessions[round % 3]!, { value: { id: `r${round}` } });
          if (round % 4 === 1) await leadership.proclaim({ round });
          await delay(Math.random() * 20);
          if (round < 11) await leadership.resign();
          last = leadership;
        }
        const finalTerm = last!.term;
        for (const [i, observer] of observers.entries()) {
          await waitFor(() => observer.last?.term === finalTerm, `observer ${i} ends on the current leader`);
          observer.checkOrder(`observer ${i}`);
        }
      } finally {
        await Promise.all(observers.map((o) => o.stop()));
      }
    },
  );
}
