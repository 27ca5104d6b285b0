import { MemoryLockProvider, MemoryLockStore } from '@baton/core';
import { type TestDatabase, testDatabase } from '@baton/test-servers/pglite';
import type { Pool } from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  applyRetention,
  PostgresTaskSource,
  type RetentionPolicy,
  type RetentionRun,
  retentionKey,
  runRetention,
} from '../src/index.js';
import { freshSource } from './support.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await testDatabase();
});
afterAll(async () => {
  await db?.close();
});

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

const DAY = 24 * 3_600_000;

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * A table holding one task of each kind the policy must tell apart, aged by `finished_at` (and `created_at`
 * for unfinished ones, which must never count): returns the ids the policy below removes and the ones it keeps.
 */
async function seed(source: PostgresTaskSource, admin: Pool, schema: string) {
  const age = async (ids: string[], days: number, column = 'finished_at') => {
    await admin.query(
      `UPDATE "${schema}".tasks SET ${column} = now() - $2::int * interval '1 day' WHERE id = ANY($1::bigint[])`,
      [ids, days],
    );
  };
  const finish = async (ids: string[], how: 'done' | 'dead' | 'failed' | 'running') => {
    for (const id of ids) {
      await source.claim(id, 1, 'w');
      if (how === 'done') await source.complete(id, 1, { ok: true });
      if (how === 'dead') await source.fail(id, 1, { message: 'bad', retryable: false });
      if (how === 'failed') await source.fail(id, 1, { message: 'again' });
    }
  };
  const ids = await source.enqueue(Array.from({ length: 14 }, (_, n) => ({ kind: 'job', payload: { n } })));
  const [oldDone, youngDone, oldDead, middleDead, youngDead, failed, running, pending] = [
    ids.slice(0, 4),
    ids.slice(4, 6),
    ids.slice(6, 8),
    ids.slice(8, 9),
    ids.slice(9, 10),
    ids.slice(10, 11),
    ids.slice(11, 12),
    ids.slice(12, 14),
  ] as string[][];
  await finish([...oldDone!, ...youngDone!], 'done');
  await finish([...oldDead!, ...middleDead!, ...youngDead!], 'dead');
  await finish(failed!, 'failed');
  await finish(running!, 'running');
  await age(oldDone!, 2); // older than doneAfter (1 day): removed
  await age(oldDead!, 10); // older than deadAfter (7 days): removed
  await age(middleDead!, 2); // a dead task younger than deadAfter though older than doneAfter: kept
  await age([...failed!, ...running!, ...pending!], 30, 'created_at'); // not finished: never removed
  return {
    removed: { done: oldDone!, dead: oldDead! },
    kept: [...youngDone!, ...middleDead!, ...youngDead!, ...failed!, ...running!, ...pending!],
  };
}

const policy: RetentionPolicy = { doneAfterMs: DAY, deadAfterMs: 7 * DAY, everyMs: 100, batchSize: 3 };

/** `n` participants on one lock store (as `n` worker processes on one lock backend), each its own source. */
async function participants(n: number, schema: string) {
  const store = new MemoryLockStore();
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const source = new PostgresTaskSource({
        schema,
        connection: { connectionString: db.connectionString, poolSize: 2 },
      });
      const locks = new MemoryLockProvider({ store, ttlMs: 2_000, lockDelayMs: 0 });
      const controller = new AbortController();
      const runs: RetentionRun[] = [];
      const elected: number[] = [];
      const errors: unknown[] = [];
      const running = runRetention(source, locks, policy, {
        signal: controller.signal,
        value: { id: `w${i}` },
        onRun: (run) => runs.push(run),
        onElected: (term) => elected.push(term),
        onError: (error) => errors.push(error),
      });
      let stopped = false;
      const stop = async () => {
        if (stopped) return;
        stopped = true;
        controller.abort();
        await running;
        await locks.close();
        await source.close();
      };
      cleanups.push(stop);
      return { id: `w${i}`, runs, elected, errors, stop, locks };
    }),
  );
}

describe('retention', () => {
  it('with 3 participants only the elected one prunes, and only rows older than the policy of done and dead', async () => {
    const { source, schema, admin, close } = await freshSource(db);
    cleanups.push(close);
    const { removed, kept } = await seed(source, admin, schema);

    const workers = await participants(3, schema);
    await until(() => workers.some((w) => w.runs.length >= 3), 'three runs of the leader');
    const leaders = workers.filter((w) => w.elected.length > 0);
    expect(leaders).toHaveLength(1);
    for (const w of workers) if (w !== leaders[0]) expect(w.runs).toEqual([]);
    const [leader] = leaders;
    // The first run removed everything due; later runs found nothing more.
    expect(leader!.runs[0]).toMatchObject({ done: removed.done.length, dead: removed.dead.length });
    expect(leader!.runs.slice(1).every((run) => run.done === 0 && run.dead === 0)).toBe(true);
    expect(leader!.runs[0]!.term).toBe(leader!.elected[0]);
    for (const id of [...removed.done, ...removed.dead]) expect(await source.get(id)).toBeNull();
    for (const id of kept) expect(await source.get(id)).not.toBeNull();
    expect(workers.flatMap((w) => w.errors)).toEqual([]);

    // The election is visible to anyone on the backend, under the table's own key.
    const holder = await leader!.locks.getHolder(retentionKey(source));
    expect(holder).not.toBeNull();
  });

  it('when the leader stops, another participant takes over and prunes what became due since', async () => {
    const { source, schema, admin, close } = await freshSource(db);
    cleanups.push(close);
    await seed(source, admin, schema);
    const workers = await participants(3, schema);
    await until(() => workers.some((w) => w.runs.length >= 1), 'a first run');
    const first = workers.find((w) => w.elected.length > 0)!;
    await first.stop();
    const runsOfFirst = first.runs.length;

    await until(() => workers.some((w) => w !== first && w.elected.length > 0), 'a new leader');
    const successors = workers.filter((w) => w !== first && w.elected.length > 0);
    expect(successors).toHaveLength(1);
    const [next] = successors;
    expect(next!.elected[0]).toBeGreaterThan(first.elected[0]!);

    // Tasks that become old enough now are removed by the new leader, never by the stopped one.
    const [later] = await source.enqueue({ kind: 'job' });
    await source.claim(later!, 1, 'w');
    await source.complete(later!, 1, 'ok');
    await admin.query(`UPDATE "${schema}".tasks SET finished_at = now() - interval '2 days' WHERE id = $1`, [
      later,
    ]);
    await until(() => next!.runs.some((run) => run.done === 1), 'the new leader to prune');
    expect(await source.get(later!)).toBeNull();
    expect(first.runs).toHaveLength(runsOfFirst);
    for (const w of workers) if (w !== first && w !== next) expect(w.runs).toEqual([]);
  });

  it('applyRetention: a status without an age is kept; nothing younger than its age goes', async () => {
    const { source, schema, admin, close } = await freshSource(db);
    cleanups.push(close);
    const { removed, kept } = await seed(source, admin, schema);
    expect(await applyRetention(source, { deadAfterMs: 7 * DAY })).toMatchObject({
      done: 0,
      dead: removed.dead.length,
    });
    for (const id of removed.done) expect(await source.get(id)).not.toBeNull();
    expect(await applyRetention(source, { doneAfterMs: DAY, deadAfterMs: 7 * DAY })).toMatchObject({
      done: removed.done.length,
      dead: 0,
    });
    for (const id of kept) expect(await source.get(id)).not.toBeNull();
    // A bad policy is refused before anything is deleted.
    await expect(applyRetention(source, { doneAfterMs: -1 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });

  it('is off without an age: runRetention returns at once and campaigns for nothing', async () => {
    const { source, close } = await freshSource(db);
    cleanups.push(close);
    const store = new MemoryLockStore();
    const locks = new MemoryLockProvider({ store });
    cleanups.push(() => locks.close());
    await runRetention(source, locks, { everyMs: 100 });
    expect(await locks.getHolder(retentionKey(source))).toBeNull();
  });
});
