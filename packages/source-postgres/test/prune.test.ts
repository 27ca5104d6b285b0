import type { BatonError } from '@baton/core';
import { type TestDatabase, testDatabase } from '@baton/test-servers/pglite';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresTaskSource } from '../src/index.js';
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
  await Promise.all(cleanups.splice(0).map((fn) => fn()));
});

async function open() {
  const fresh = await freshSource(db);
  cleanups.push(fresh.close);
  return fresh;
}

/** Claims (fence 1) and finishes each task: `done`, or `dead` by a non-retryable failure. */
async function finish(source: PostgresTaskSource, ids: readonly string[], how: 'done' | 'dead') {
  for (const id of ids) {
    const claimed = await source.claim(id, 1, 'w');
    if (!claimed.claimed) throw new Error(`claim of ${id} refused: ${claimed.reason}`);
    if (how === 'done') await source.complete(id, 1, { ok: true });
    else await source.fail(id, 1, { message: 'bad input', retryable: false });
  }
}

describe('prune', () => {
  it('deletes only finished tasks of the chosen statuses older than the age, by the database clock, walking the table once', async () => {
    const { source, schema, admin } = await open();
    const ids = await source.enqueue(
      Array.from({ length: 30 }, (_, n) => ({ kind: 'job', payload: { n }, id: `key-${n}` })),
    );
    const oldDone = ids.slice(0, 10);
    const newDone = ids.slice(10, 14);
    const oldDead = ids.slice(14, 18);
    await finish(source, [...oldDone, ...newDone], 'done');
    await finish(source, oldDead, 'dead');
    await source.claim(ids[18]!, 1, 'w'); // running
    await source.claim(ids[19]!, 1, 'w');
    await source.fail(ids[19]!, 1, { message: 'try again' }); // failed, waiting for its retry
    await admin.query(
      `UPDATE "${schema}".tasks SET finished_at = now() - interval '2 days' WHERE id = ANY($1::bigint[])`,
      [[...oldDone, ...oldDead]],
    );
    // A running task cannot carry finished_at (tasks_finished_check), so it is never old enough to prune.
    await admin.query(
      `UPDATE "${schema}".tasks SET created_at = now() - interval '3 days' WHERE id = ANY($1::bigint[])`,
      [[ids[18], ids[19]]],
    );

    const day = 24 * 3_600_000;
    const pruned = await source.prune({ olderThanMs: day, batchSize: 4 });
    expect(pruned).toEqual({ done: 10, dead: 0, batches: Math.ceil(30 / 4) });
    for (const id of oldDone) expect(await source.get(id)).toBeNull();
    for (const id of [...newDone, ...oldDead, ...ids.slice(18)]) expect(await source.get(id)).not.toBeNull();
    expect((await source.get(ids[18]!))?.status).toBe('running');
    expect((await source.get(ids[19]!))?.status).toBe('failed');

    expect(await source.prune({ olderThanMs: day, statuses: ['dead'] })).toMatchObject({ done: 0, dead: 4 });
    expect(await source.prune({ olderThanMs: 0 })).toMatchObject({ done: 4, dead: 0 });
    expect((await source.stats()).total).toBe(12);

    // A pruned task's key names a new task when enqueued again.
    const [again] = await source.enqueue({ kind: 'job', id: 'key-0' });
    expect(again).not.toBe(ids[0]);
    expect(BigInt(again!)).toBeGreaterThan(BigInt(ids.at(-1)!));
  });

  // Needs two connections at once (a holder and the prune): PGlite serves one, so the real server only.
  it.skipIf(!process.env.DATABASE_URL)(
    'never waits on a row lock: a locked finished task is skipped, and pruned by a later run (real server only: set DATABASE_URL)',
    async () => {
      const { source, schema, admin } = await open();
      const ids = await source.enqueue(Array.from({ length: 5 }, () => ({ kind: 'job' })));
      await finish(source, ids, 'done');
      const holder = await admin.connect();
      try {
        await holder.query('BEGIN');
        await holder.query(`SELECT 1 FROM "${schema}".tasks WHERE id = $1::bigint FOR UPDATE`, [ids[2]]);
        expect(await source.prune({ olderThanMs: 0 })).toMatchObject({ done: 4 });
        expect((await source.get(ids[2]!))?.status).toBe('done');
        await holder.query('ROLLBACK');
      } finally {
        holder.release();
      }
      expect(await source.prune({ olderThanMs: 0 })).toMatchObject({ done: 1 });
      expect((await source.stats()).total).toBe(0);
    },
  );

  it('refuses statuses that are not finished ones, and ages outside its bounds, naming the option', async () => {
    const { source } = await open();
    for (const [options, field] of [
      [{ olderThanMs: 0, statuses: ['running'] }, 'statuses'],
      [{ olderThanMs: 0, statuses: [] }, 'statuses'],
      [{ olderThanMs: -1 }, 'prune.olderThanMs'],
      [{ olderThanMs: 0, batchSize: 0 }, 'batchSize'],
    ] as const) {
      const error = (await source
        .prune(options as unknown as Parameters<PostgresTaskSource['prune']>[0])
        .catch((e: unknown) => e)) as BatonError;
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.message).toContain(field);
    }
  });

  it('stops between batches when its signal aborts, keeping what it deleted', async () => {
    const { source } = await open();
    const ids = await source.enqueue(Array.from({ length: 6 }, () => ({ kind: 'job' })));
    await finish(source, ids, 'done');
    const controller = new AbortController();
    controller.abort(new Error('operator pressed ^C'));
    await expect(source.prune({ olderThanMs: 0, signal: controller.signal })).rejects.toThrow();
    expect((await source.stats()).total).toBe(6);
  });
});
