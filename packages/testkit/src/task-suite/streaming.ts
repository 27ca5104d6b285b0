import type { TestFn } from '../lock-suite/types.js';
import {
  defineTaskCase,
  enqueueMany,
  FAR_FUTURE,
  pass,
  passIds,
  verify,
  verifyEqual,
  verifyRejects,
  verifySame,
} from './context.js';
import type { TaskSourceFactory, TaskSuiteOptions } from './types.js';

const STARTS = [0, 0.25, 0.5, 0.75, 0.999];

/** Streaming: every due task exactly once per pass, in one stable order rotated by `start`, page by page. */
export function dueTests(test: TestFn, factory: TaskSourceFactory, options: TaskSuiteOptions = {}): void {
  const size = options.streamSize ?? 60;

  defineTaskCase(
    test,
    factory,
    options,
    'due: every due task exactly once per pass, from any start, with pages smaller than the set',
    async (ctx) => {
      const ids = await enqueueMany(ctx.source, size);
      const expected = [...ids].sort();
      for (const start of [...STARTS, Math.random()]) {
        for (const pageSize of [1, 7, size + 5]) {
          const seen = await passIds(ctx.source, { start, pageSize });
          verifyEqual(new Set(seen).size, seen.length, `no task twice (start ${start}, page ${pageSize})`);
          verifySame([...seen].sort(), expected, `every due task (start ${start}, page ${pageSize})`);
        }
      }
    },
  );

  defineTaskCase(
    test,
    factory,
    options,
    'due: passes from different starts are rotations of one stable order and begin at different tasks',
    async (ctx) => {
      await enqueueMany(ctx.source, size);
      const base = await passIds(ctx.source, { start: 0, pageSize: 7 });
      verifySame(
        await passIds(ctx.source, { start: 0, pageSize: 4 }),
        base,
        'the order does not depend on pages',
      );
      const firsts = new Set<string>();
      for (const start of STARTS) {
        const seen = await passIds(ctx.source, { start, pageSize: 6 });
        const offset = base.indexOf(seen[0]!);
        verify(offset >= 0, `start ${start}: the pass begins at a due task`);
        const rotated = [...base.slice(offset), ...base.slice(0, offset)];
        verifySame(seen, rotated, `start ${start}: the pass is the stable order, rotated (it wraps around)`);
        firsts.add(seen[0]!);
      }
      verify(firsts.size >= 2, 'different starts begin at different tasks (workers do not all start at #1)');
    },
  );

  defineTaskCase(
    test,
    factory,
    options,
    'due: each task carries a unique dueKey that rises along the pass and wraps around at most once',
    async (ctx) => {
      await enqueueMany(ctx.source, size);
      const keyOf = new Map<string, string>();
      for (const start of [...STARTS, Math.random()]) {
        const tasks = await pass(ctx.source, { start, pageSize: 7 });
        const keys = tasks.map((task) => task.dueKey);
        verify(
          keys.every((key) => typeof key === 'string' && key.length > 0),
          `start ${start}: every dueKey is a non-empty string`,
        );
        verifyEqual(new Set(keys).size, keys.length, `start ${start}: no two tasks share a dueKey`);
        const descents = keys.filter((key, n) => n > 0 && key < keys[n - 1]!).length;
        verify(descents <= 1, `start ${start}: keys rise along the pass and wrap at most once (${descents})`);
        if (descents === 1) {
          verify(
            keys.at(-1)! < keys[0]!,
            `start ${start}: after wrapping, the pass stops before its first key`,
          );
        }
        for (const task of tasks) {
          const known = keyOf.get(task.id);
          if (known !== undefined) {
            verifyEqual(task.dueKey, known, `task ${task.id} keeps its dueKey from pass to pass`);
          }
          keyOf.set(task.id, task.dueKey);
        }
      }
    },
  );

  defineTaskCase(
    test,
    factory,
    options,
    'due: not yet due, done, dead and freshly claimed tasks are left out; abandoned claims come back',
    async (ctx) => {
      const [due, later, done, dead, running] = await ctx.source.enqueue([
        { kind: 'a' },
        { kind: 'a', runAt: FAR_FUTURE },
        { kind: 'a' },
        { kind: 'a' },
        { kind: 'a' },
      ]);
      for (const id of [done!, dead!, running!]) {
        verify((await ctx.source.claim(id, 1, 'w')).claimed, 'claim');
      }
      verify((await ctx.source.complete(done!, 1)).applied, 'complete');
      verify((await ctx.source.fail(dead!, 1, { message: 'x', retryable: false })).applied, 'fail');
      verifySame(await passIds(ctx.source, { pageSize: 2 }), [due], 'only the pending, due task');
      await ctx.harness.elapse(ctx.settings.reclaimAfterMs + 1_000, [running!]);
      verifySame(
        [...(await passIds(ctx.source, { pageSize: 2 }))].sort(),
        [due!, running!].sort(),
        'a running task whose claim is older than reclaimAfterMs is due again',
      );
      verify(later, 'enqueued');
    },
  );

  defineTaskCase(test, factory, options, 'due: kinds filters the pass', async (ctx) => {
    const ids = await ctx.source.enqueue(
      Array.from({ length: 30 }, (_, n) => ({ kind: ['red', 'green', 'blue'][n % 3]!, payload: { n } })),
    );
    const red = ids.filter((_, n) => n % 3 === 0).sort();
    const redOrBlue = ids.filter((_, n) => n % 3 !== 1).sort();
    verifySame([...(await passIds(ctx.source, { kinds: ['red'], pageSize: 4 }))].sort(), red, 'red');
    verifySame(
      [...(await passIds(ctx.source, { kinds: ['red', 'blue'], start: 0.6, pageSize: 3 }))].sort(),
      redOrBlue,
      'red or blue',
    );
    verifySame(await passIds(ctx.source, { kinds: [] }), [], 'no kinds, no tasks');
    verifySame(await passIds(ctx.source, { kinds: ['purple'] }), [], 'unknown kind');
  });

  defineTaskCase(
    test,
    factory,
    options,
    'due: a task finished by another worker before the pass reaches it is not listed',
    async (ctx) => {
      await enqueueMany(ctx.source, 12);
      const order = await passIds(ctx.source, { pageSize: 1 });
      const iterator = ctx.source.due({ pageSize: 1 })[Symbol.asyncIterator]();
      const first = await iterator.next();
      verifyEqual(first.done, false, 'the pass yields a task');
      // Another worker finishes every other task meanwhile.
      for (const id of order.slice(1)) {
        verify((await ctx.source.claim(id, 1, 'other')).claimed, 'claim by the other worker');
        verify((await ctx.source.complete(id, 1)).applied, 'complete by the other worker');
      }
      const rest: string[] = [];
      for (let next = await iterator.next(); !next.done; next = await iterator.next())
        rest.push(next.value.id);
      verifySame(rest, [], 'tasks finished before the pass reached them are not listed');
    },
  );

  defineTaskCase(
    test,
    factory,
    options,
    'due: bad start or pageSize rejects with INVALID_ARGUMENT',
    async (ctx) => {
      await ctx.source.enqueue({ kind: 'a' });
      for (const start of [-0.1, 1, 1.5, Number.NaN]) {
        await verifyRejects(passIds(ctx.source, { start }), 'INVALID_ARGUMENT', `start ${start}`);
      }
      for (const pageSize of [0, -1, 2.5]) {
        await verifyRejects(passIds(ctx.source, { pageSize }), 'INVALID_ARGUMENT', `pageSize ${pageSize}`);
      }
    },
  );

  defineTaskCase(
    test,
    factory,
    options,
    'due: an aborted signal stops the pass with ABORTED',
    async (ctx) => {
      await enqueueMany(ctx.source, 10);
      const before = new AbortController();
      before.abort();
      await verifyRejects(
        passIds(ctx.source, { signal: before.signal }),
        'ABORTED',
        'signal aborted up front',
      );
      const during = new AbortController();
      const seen: string[] = [];
      const iterate = async () => {
        for await (const task of ctx.source.due({ pageSize: 2, signal: during.signal })) {
          seen.push(task.id);
          if (seen.length === 3) during.abort();
        }
      };
      await verifyRejects(iterate(), 'ABORTED', 'signal aborted during the pass');
      verify(seen.length <= 4, `the pass stops within the page it is on (yielded ${seen.length} of 10)`);
    },
  );

  if (options.creationWindow) {
    defineTaskCase(
      test,
      factory,
      options,
      'due: the creation window leaves out tasks created before it',
      async (ctx) => {
        const window = ctx.settings.createdWithinMs!;
        const old = await enqueueMany(ctx.source, 5, 'old');
        await ctx.harness.elapse(window + 60_000, old);
        const fresh = await enqueueMany(ctx.source, 5, 'fresh');
        verifySame(
          [...(await passIds(ctx.source, { pageSize: 3, start: 0.4 }))].sort(),
          [...fresh].sort(),
          'only tasks created within the window are due',
        );
        const [claimable] = old;
        const claim = await ctx.source.claim(claimable!, 1, 'w');
        verify(claim.claimed, 'the window narrows what due() lists, not what may be claimed');
      },
      { createdWithinMs: 3_600_000 },
    );
  }
}
