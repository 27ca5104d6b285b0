import type { BatonError } from '@baton/core';
import { type TestDatabase, testDatabase } from '@baton/test-servers/pglite';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresTaskSource, type InvalidTaskRowError, PostgresTaskSource } from '../src/index.js';
import { adminPool, freshSource } from './support.js';

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

async function open(options: Parameters<typeof freshSource>[1] = {}) {
  const fresh = await freshSource(db, options);
  cleanups.push(fresh.close);
  return fresh;
}

describe('enqueue', () => {
  it('inserts a large batch in one statement with ids in input order', async () => {
    const { source } = await open();
    const ids = await source.enqueue(
      Array.from({ length: 5_000 }, (_, n) => ({ kind: 'bulk', payload: { n } })),
    );
    expect(ids).toHaveLength(5_000);
    const numeric = ids.map(BigInt);
    for (let i = 1; i < numeric.length; i++) expect(numeric[i]! > numeric[i - 1]!).toBe(true);
    for (const n of [0, 1234, 4999]) expect((await source.get(ids[n]!))?.payload).toEqual({ n });
  });

  it('resolves one idempotency key raced by several servers to one task', async () => {
    const first = await open();
    // A second server on the same schema.
    const twin = new PostgresTaskSource({
      connection: { connectionString: db.connectionString },
      schema: first.schema,
    });
    cleanups.push(() => twin.close());
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        (i % 2 ? twin : first.source).enqueue([
          { kind: 'k', id: 'shared-key' },
          { kind: 'k', id: `own-${i}` },
        ]),
      ),
    );
    const shared = new Set(results.map((r) => r[0]));
    expect(shared.size).toBe(1);
    const count = await first.admin.query(
      `SELECT count(*)::int AS n FROM "${first.schema}".tasks WHERE key = 'shared-key'`,
    );
    expect(count.rows[0]).toEqual({ n: 1 });
    expect((await first.source.get([...shared][0]!))?.key).toBe('shared-key');
  });

  it('rejects payloads PostgreSQL cannot store as INVALID_ARGUMENT, keeping the cause', async () => {
    const { source } = await open();
    // A lone surrogate: JSON.stringify escapes it, jsonb refuses the escape.
    const error = await source
      .enqueue({ kind: 'x', payload: { text: 'half \ud800 a pair' } })
      .catch((e) => e);
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', backend: 'postgres' });
    expect((error as BatonError).cause).toMatchObject({ code: expect.stringMatching(/^22/) });
  });

  it('refuses a NUL in a payload before sending it, naming the payload (jsonb would say 22P05)', async () => {
    const { source } = await open();
    const error = await source.enqueue({ kind: 'x', payload: { text: 'nul \u0000 inside' } }).catch((e) => e);
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', backend: 'postgres' });
    expect((error as BatonError).message).toBe(
      'enqueue(): task #0: payload contains a NUL character (\\u0000), which PostgreSQL cannot store in jsonb',
    );
    expect(await source.stats()).toMatchObject({ total: 0 });
  });
});

describe('fenced writes on the row', () => {
  it('claim records the worker and the database time of the claim', async () => {
    const { source, admin, schema } = await open();
    const [id] = await source.enqueue({ kind: 'x' });
    const claim = await source.claim(id!, 3, 'worker-7');
    expect(claim.claimed).toBe(true);
    const row = await admin.query(
      `SELECT worker_id, fence, claimed_at, status, (now() - claimed_at) < interval '1 minute' AS recent
         FROM "${schema}".tasks WHERE id = $1`,
      [id],
    );
    expect(row.rows[0]).toMatchObject({ worker_id: 'worker-7', fence: '3', status: 'running', recent: true });
  });

  it('a running task is taken over by a newer fence at once (the lock decides, not reclaimAfterMs)', async () => {
    const { source } = await open({ reclaimAfterMs: 3_600_000 });
    const [id] = await source.enqueue({ kind: 'x' });
    expect((await source.claim(id!, 1, 'a')).claimed).toBe(true);
    const takeover = await source.claim(id!, 2, 'b');
    expect(takeover).toMatchObject({ claimed: true, task: { fence: 2, workerId: 'b', attempts: 2 } });
  });

  it('fail computes the backoff in SQL: base·2^(attempts−1), capped, half-jittered', async () => {
    const { source, admin, schema } = await open({ backoff: { baseMs: 10_000, maxMs: 50_000 } });
    const [id] = await source.enqueue({ kind: 'x', maxAttempts: 6 });
    for (let attempt = 1; attempt <= 5; attempt++) {
      expect((await source.claim(id!, attempt, 'w')).claimed).toBe(true);
      const failed = await source.fail(id!, attempt, { message: `#${attempt}` });
      expect(failed).toMatchObject({ applied: true, status: 'failed' });
      const task = (await source.get(id!))!;
      // updated_at is now() of the fail statement, so the delay can be checked exactly.
      const delay = task.runAt.getTime() - task.updatedAt.getTime();
      const ceiling = Math.min(50_000, 10_000 * 2 ** (attempt - 1));
      expect(delay).toBeGreaterThanOrEqual(ceiling / 2 - 1);
      expect(delay).toBeLessThanOrEqual(ceiling + 1);
      await admin.query(`UPDATE "${schema}".tasks SET run_at = now() WHERE id = $1`, [id]);
    }
  });

  it('keeps error messages with NUL characters (replaced) instead of losing the failure', async () => {
    const { source } = await open();
    const [id] = await source.enqueue({ kind: 'x' });
    await source.claim(id!, 1, 'w');
    expect(await source.fail(id!, 1, { message: 'bad\u0000byte', retryable: false })).toEqual({
      applied: true,
      status: 'dead',
    });
    expect((await source.get(id!))?.lastError).toBe('bad\uFFFDbyte');
  });

  it('a result that is not JSON rejects with INVALID_ARGUMENT and leaves the task running', async () => {
    const { source } = await open();
    const [id] = await source.enqueue({ kind: 'x' });
    await source.claim(id!, 1, 'w');
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    await expect(source.complete(id!, 1, circular)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect((await source.get(id!))?.status).toBe('running');
    expect(await source.complete(id!, 1)).toEqual({ applied: true });
    expect((await source.get(id!))?.result).toBeNull();
  });
});

describe('operator helpers', () => {
  it('stats counts tasks per status', async () => {
    const { source } = await open();
    const ids = await source.enqueue(Array.from({ length: 7 }, () => ({ kind: 'x' })));
    await source.claim(ids[0]!, 1, 'w');
    await source.claim(ids[1]!, 1, 'w');
    await source.complete(ids[1]!, 1);
    await source.claim(ids[2]!, 1, 'w');
    await source.fail(ids[2]!, 1, { message: 'x' });
    await source.claim(ids[3]!, 1, 'w');
    await source.fail(ids[3]!, 1, { message: 'x', retryable: false });
    expect(await source.stats()).toEqual({ pending: 3, running: 1, done: 1, failed: 1, dead: 1, total: 7 });
  });

  it('list pages through tasks in id order, by status and kind', async () => {
    const { source } = await open();
    // Enough tasks for ids to pass 9 → 10 → 100: the order is numeric, never textual.
    const ids = await source.enqueue(
      Array.from({ length: 120 }, (_, n) => ({ kind: n % 2 ? 'odd' : 'even' })),
    );
    await source.claim(ids[4]!, 1, 'w');
    const listed: string[] = [];
    for (let page = await source.list({ limit: 7 }); page.length > 0; ) {
      listed.push(...page.map((t) => t.id));
      page = await source.list({ limit: 7, after: page.at(-1)!.id });
    }
    expect(listed).toEqual(ids);
    expect((await source.list({ kind: 'odd' })).map((t) => t.id)).toEqual(ids.filter((_, n) => n % 2));
    expect((await source.list({ status: 'running' })).map((t) => t.id)).toEqual([ids[4]]);
    expect(await source.list({ status: 'running', kind: 'odd' })).toEqual([]);
    await expect(source.list({ after: 'abc' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('retry puts failed or dead tasks back to pending, due now, attempts reset, fence kept', async () => {
    const { source } = await open();
    const [dead1, dead2, failed, running] = await source.enqueue([
      { kind: 'a' },
      { kind: 'b' },
      { kind: 'a' },
      { kind: 'a' },
    ]);
    for (const id of [dead1!, dead2!, failed!, running!]) await source.claim(id, 5, 'w');
    await source.fail(dead1!, 5, { message: 'x', retryable: false });
    await source.fail(dead2!, 5, { message: 'x', retryable: false });
    await source.fail(failed!, 5, { message: 'x' });
    expect(await source.retry(running!)).toBe(0);
    expect(await source.retry({ status: 'dead', kind: 'b' })).toBe(1);
    expect(await source.retry({ status: 'dead' })).toBe(1);
    expect(await source.retry(failed!)).toBe(1);
    expect(await source.retry('not-an-id')).toBe(0);
    await expect(source.retry({ status: 'done' as 'dead' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    for (const id of [dead1!, dead2!, failed!]) {
      expect(await source.get(id)).toMatchObject({
        status: 'pending',
        attempts: 0,
        fence: 5,
        lastError: 'x',
      });
    }
    const due: string[] = [];
    for await (const task of source.due()) due.push(task.id);
    expect(due.sort()).toEqual([dead1!, dead2!, failed!].sort());
    expect((await source.claim(dead1!, 5, 'w')).claimed).toBe(false);
    expect((await source.claim(dead1!, 6, 'w')).claimed).toBe(true);
  });

  it('close is idempotent, later calls throw CLOSED, and a pool passed in stays open', async () => {
    const { schema } = await open();
    const pool = adminPool(db);
    cleanups.push(() => pool.end());
    const source = new PostgresTaskSource({ pool, schema });
    await source.enqueue({ kind: 'x' });
    await Promise.all([source.close(), source.close()]);
    await expect(source.enqueue({ kind: 'x' })).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(source.get('1')).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(source.due()[Symbol.asyncIterator]().next()).rejects.toMatchObject({ code: 'CLOSED' });
    expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });
});

describe('rows that are not what the source expects', () => {
  it('a NULL kind, an unknown status, a fence beyond 2^53 and unparsable JSON are TASK_INVALID, per row', async () => {
    // An unknown status on an unfinished row is listed (the open-tasks index holds it) and reported too.
    const { source, admin, schema } = await open();
    const t = `"${schema}".tasks`;
    const ids = await source.enqueue(Array.from({ length: 8 }, (_, n) => ({ kind: 'x', payload: { n } })));
    // Another program, with its own idea of the table, writes rows.
    await admin.query(`ALTER TABLE ${t} ALTER COLUMN kind DROP NOT NULL`);
    await admin.query(`ALTER TABLE ${t} DROP CONSTRAINT tasks_status_check`);
    await admin.query(`ALTER TABLE ${t} ALTER COLUMN payload TYPE text USING payload::text`);
    await admin.query(`UPDATE ${t} SET kind = NULL WHERE id = $1`, [ids[1]]);
    await admin.query(`UPDATE ${t} SET payload = '{"n": 3, oops' WHERE id = $1`, [ids[3]]);
    await admin.query(`UPDATE ${t} SET fence = 9007199254740993, status = 'failed' WHERE id = $1`, [ids[5]]);
    await admin.query(`UPDATE ${t} SET status = 'paused' WHERE id = $1`, [ids[7]]);

    const reported: InvalidTaskRowError[] = [];
    const seen: string[] = [];
    for await (const task of source.due({
      pageSize: 2,
      onInvalid: (e) => reported.push(e as InvalidTaskRowError),
    })) {
      seen.push(task.id);
    }
    expect(seen.sort()).toEqual([ids[0], ids[2], ids[4], ids[6]].sort());
    expect(reported.map((e) => [e.taskId, e.column, e.code]).sort()).toEqual(
      [
        [ids[1], 'kind', 'TASK_INVALID'],
        [ids[3], 'payload', 'TASK_INVALID'],
        [ids[5], 'fence', 'TASK_INVALID'],
        [ids[7], 'status', 'TASK_INVALID'],
      ].sort(),
    );
    await expect(source.get(ids[7]!)).rejects.toMatchObject({ code: 'TASK_INVALID', column: 'status' });
    await expect(source.list()).rejects.toMatchObject({ code: 'TASK_INVALID' });
    const listed = await source.list({ onInvalid: () => {} });
    expect(listed.map((task) => task.id)).toEqual([ids[0], ids[2], ids[4], ids[6]]);
  });

  it('the source-wide onInvalidTask hears about bad rows when due() is given no callback', async () => {
    const reported: string[] = [];
    const { source, admin, schema } = await open({ onInvalidTask: (e) => reported.push(e.taskId) });
    const ids = await source.enqueue([{ kind: 'a' }, { kind: 'b' }]);
    await admin.query(`ALTER TABLE "${schema}".tasks ALTER COLUMN kind DROP NOT NULL`);
    await admin.query(`UPDATE "${schema}".tasks SET kind = NULL WHERE id = $1`, [ids[0]]);
    const seen: string[] = [];
    for await (const task of source.due()) seen.push(task.id);
    expect(seen).toEqual([ids[1]]);
    expect(reported).toEqual([ids[0]]);
  });

  it('claiming an unreadable task buries it under the claim’s fence and reports TASK_INVALID', async () => {
    const { source, admin, schema } = await open();
    const [id] = await source.enqueue({ kind: 'a' });
    await admin.query(`ALTER TABLE "${schema}".tasks ALTER COLUMN kind DROP NOT NULL`);
    await admin.query(`UPDATE "${schema}".tasks SET kind = NULL WHERE id = $1`, [id]);
    await expect(source.claim(id!, 4, 'w')).rejects.toMatchObject({ code: 'TASK_INVALID', taskId: id });
    const row = await admin.query(`SELECT status, fence, last_error FROM "${schema}".tasks WHERE id = $1`, [
      id,
    ]);
    expect(row.rows[0]).toMatchObject({ status: 'dead', fence: '4' });
    expect((row.rows[0] as { last_error: string }).last_error).toMatch(/^invalid task row: .*kind is NULL/);
    expect((await source.claim(id!, 5, 'w')).claimed).toBe(false);
  });
});

describe('createPostgresTaskSource', () => {
  it('connects from environment variables, migrates, and works', async () => {
    const schema = await db.newSchema('env');
    const source = await createPostgresTaskSource({
      DATABASE_URL: db.connectionString,
      BATON_PG_SCHEMA: schema,
      BATON_PG_POOL_SIZE: '3',
      BATON_PG_RECLAIM_AFTER: '45s',
      BATON_PG_BACKOFF_BASE: '2s',
      BATON_PG_BACKOFF_MAX: '10m',
      BATON_PG_MAX_ATTEMPTS: '7',
      BATON_PG_WINDOW: '1h',
    });
    cleanups.push(() => source.close());
    expect(source.schema).toBe(schema);
    expect(source.reclaimAfterMs).toBe(45_000);
    expect(source.backoff).toEqual({ baseMs: 2_000, maxMs: 600_000 });
    expect(source.createdWithinMs).toBe(3_600_000);
    const [id] = await source.enqueue({ kind: 'from-env' });
    expect((await source.get(id!))?.maxAttempts).toBe(7);
  });

  it('accepts a configuration object and a pool of your own', async () => {
    const schema = await db.newSchema('obj');
    const pool = adminPool(db);
    cleanups.push(() => pool.end());
    const source = await createPostgresTaskSource(
      { connectionString: 'postgres://unused', schema },
      { pool },
    );
    await source.enqueue({ kind: 'x' });
    await source.close();
    expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });
});
