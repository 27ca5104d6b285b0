import type { LeaderInfo } from '@baton/core';
import { check, checkEqual, defineCase, delay } from '../lock-suite/context.js';
import type { LockHarnessFactory, TestFn } from '../lock-suite/types.js';
import { codeOf, electionFor, waitFor } from './support.js';
import type { ElectionSuiteOptions } from './types.js';

/** `leader()`, published values and `proclaim`. */
export function electionDiscoveryTests(
  test: TestFn,
  factory: LockHarnessFactory,
  options: ElectionSuiteOptions,
): void {
  defineCase(test, factory, options, 'election: leader() is null when nobody leads', async (ctx) => {
    const election = electionFor(ctx);
    checkEqual(await election.leader(), null, 'never contested');
    const leadership = await election.campaign(await ctx.open());
    check(await election.leader(), 'leader while leading');
    await leadership.resign();
    checkEqual(await election.leader(), null, 'after resign');
  });

  defineCase(
    test,
    factory,
    options,
    'election: a campaign on a free key wins at once; leader() reports its value and term',
    async (ctx) => {
      const election = electionFor(ctx);
      const session = await ctx.open();
      const leadership = await election.campaign(session, {
        value: { id: 'node-1', address: '10.0.0.1:8080', zone: 'eu-1', weights: [1, 2] },
      });
      checkEqual(leadership.term, leadership.lease.fence, 'term is the lease fence');
      check(!leadership.signal.aborted, 'leadership signal live');
      const info = await election.leader();
      check(info, 'leader present');
      checkEqual(info.id, 'node-1', 'id');
      checkEqual(info.address, '10.0.0.1:8080', 'address');
      checkEqual(info.zone, 'eu-1', 'extra field');
      checkEqual(JSON.stringify(info.weights), '[1,2]', 'structured extra field');
      checkEqual(info.term, leadership.term, 'term');
      checkEqual(info.sessionId, session.id, 'session');
      check(!Number.isNaN(Date.parse(info.startedAt)), `startedAt is an ISO time: ${info.startedAt}`);
      checkEqual(JSON.stringify(info), JSON.stringify(leadership.value), 'leader() equals leadership.value');
    },
  );

  defineCase(
    test,
    factory,
    options,
    'election: proclaim updates what leader() and observers see without changing the term',
    async (ctx) => {
      const election = electionFor(ctx);
      const leadership = await election.campaign(await ctx.open(), { value: { id: 'p', state: 'starting' } });
      const controller = new AbortController();
      const seen: Array<LeaderInfo | null> = [];
      const observing = (async () => {
        for await (const info of election.observe({ signal: controller.signal, pollIntervalMs: 50 })) {
          seen.push(info);
        }
      })();
      try {
        await waitFor(() => seen.at(-1)?.state === 'starting', 'observer sees the first value');
        const updated = await leadership.proclaim({ state: 'ready', address: '10.0.0.2:9000' });
        checkEqual(updated.term, leadership.term, 'term after proclaim');
        checkEqual(updated.id, 'p', 'id kept');
        const info = await election.leader();
        checkEqual(info?.state, 'ready', 'leader() after proclaim');
        checkEqual(info?.address, '10.0.0.2:9000', 'new field after proclaim');
        checkEqual(info?.term, leadership.term, 'leader() term after proclaim');
        await waitFor(() => seen.at(-1)?.state === 'ready', 'observer sees the proclaimed value');
        checkEqual(seen.at(-1)?.term, leadership.term, 'observed term after proclaim');
        check(!leadership.signal.aborted, 'still leading after proclaim');
        await leadership.resign();
        checkEqual(
          await codeOf(leadership.proclaim({ state: 'late' })),
          'LEASE_LOST',
          'proclaim after resign',
        );
      } finally {
        controller.abort();
        await observing;
      }
    },
  );

  defineCase(
    test,
    factory,
    options,
    'election: aborting a campaign rejects with ABORTED and leaves no lock behind',
    async (ctx) => {
      const election = electionFor(ctx);
      const [a, b, c] = [await ctx.open(), await ctx.open(), await ctx.open()];
      checkEqual(
        await codeOf(election.campaign(b, { signal: AbortSignal.abort() })),
        'ABORTED',
        'already aborted signal',
      );
      const leader = await election.campaign(a);
      const controller = new AbortController();
      const waiting = codeOf(election.campaign(b, { signal: controller.signal }));
      await delay(100);
      controller.abort(new Error('shutdown'));
      checkEqual(await waiting, 'ABORTED', 'aborted while waiting');
      // Abort exactly as the lock frees: whether or not it won, it must not keep the lock.
      const racing = new AbortController();
      const raced = codeOf(election.campaign(c, { signal: racing.signal }));
      await delay(50);
      const resigned = leader.resign();
      racing.abort();
      await resigned;
      checkEqual(await raced, 'ABORTED', 'aborted in the same moment');
      checkEqual(b.leases().length + c.leases().length, 0, 'no lease left in the aborted sessions');
      await delay(ctx.options.granularityMs * 2);
      checkEqual(await election.leader(), null, 'nobody leads after the aborted campaigns');
      const stored = await ctx.harness.inspect(election.key);
      checkEqual(stored?.holder, undefined, 'backend record has no holder');
    },
  );
}
