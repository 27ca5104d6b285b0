import { type TestDatabase, testDatabase } from '@baton/test-servers/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS, PostgresTaskSource } from '../src/index.js';
import { statements } from '../src/statements.js';
import { adminPool, freshSource } from './support.js';

// PostgreSQL-specific parts of bucket leases and wake-ups; the contract itself is in conformance.test.ts.
let db: TestDatabase;
beforeAll(async () => {
  db = await testDatabase();
});
afterAll(async () => {
  await db?.close();
});

/** Resolves with the next value `listener` receives, or rejects after `ms`. */
function nextWake(subscribe: (listener: (shard: number | undefined) => void) => () => void, ms = 10_000) {
  return new Promise<number | undefined>((resolve, reject) => {
    let off = () => {};
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no wake-up within ${ms} ms`));
    }, ms);
    off = subscribe((shard) => {
      clearTimeout(timer);
      off();
      resolve(shard);
    });
  });
}

describe('wake-ups (LISTEN/NOTIFY)', () => {
  it('an enqueue of one due task wakes listeners with its shard; a batch with "anything"; a future task not at all', async () => {
    const { source, close } = await freshSource(db);
    const other = new PostgresTaskSource({
      connection: { connectionString: db.connectionString, poolSize: 2 },
      schema: source.schema,
    });
    try {
      // Connected: the first wake-up says "anything may be due" (notifications sent earlier are lost).
      const received: Array<number | undefined> = [];
      const connected = nextWake((l) => other.onDue(l));
      const off = other.onDue((shard) => received.push(shard));
      expect(await connected).toBeUndefined();

      const woken = nextWake((l) => other.onDue(l));
      await source.enqueue({ kind: 'later', runAt: new Date(Date.now() + 3_600_000) });
      const [id] = await source.enqueue({ kind: 'now' });
      const shard = await woken;
      expect(shard).toBe((await source.get(id!))!.shard);

      const batch = nextWake((l) => other.onDue(l));
      await source.enqueue([{ kind: 'a' }, { kind: 'b' }]);
      expect(await batch).toBeUndefined();
      off();
      expect(received.slice(0, 3)).toEqual([undefined, shard, undefined]);
    } finally {
      await other.close();
      await close();
    }
  });

  it('a retry wakes listeners; a dropped LISTEN connection is re-opened and says "anything may be due"', async () => {
    const { source, close } = await freshSource(db);
    try {
      const connected = nextWake((l) => source.onDue(l));
      const off = source.onDue(() => {});
      await connected;
      const [id] = await source.enqueue({ kind: 'x' });
      expect((await source.claim(id!, 1, 'w')).claimed).toBe(true);
      await source.fail(id!, 1, { message: 'no', retryable: false });

      const retried = nextWake((l) => source.onDue(l));
      expect(await source.retry(id!)).toBe(1);
      expect(await retried).toBe((await source.get(id!))!.shard);

      const reconnected = nextWake((l) => source.onDue(l), 30_000);
      await db.dropConnections();
      expect(await reconnected).toBeUndefined();
      const after = nextWake((l) => source.onDue(l));
      const [next] = await source.enqueue({ kind: 'y' });
      expect(await after).toBe((await source.get(next!))!.shard);
      off();
    } finally {
      await close();
    }
  }, 60_000);
});

describe('the write path', () => {
  it('a claim and a retryable failure are HOT updates: no index entry is written', async () => {
    const { source, schema, admin, close } = await freshSource(db);
    try {
      const ids = await source.enqueue(Array.from({ length: 20 }, (_, n) => ({ kind: 'x', payload: { n } })));
      const sql = statements(schema);
      const client = await admin.connect();
      try {
        // Counters of the current transaction: exactly the updates below, whatever else runs.
        await client.query('BEGIN');
        for (const id of ids) {
          await client.query(sql.claim, [id, 1, 'w', null]);
          await client.query(sql.fail, [id, 1, true, 1_000, 60_000, 'again', null]);
        }
        const stats = await client.query<{ upd: string; hot: string }>(
          `SELECT n_tup_upd::text AS upd, n_tup_hot_upd::text AS hot
             FROM pg_stat_xact_user_tables WHERE schemaname = $1 AND relname = 'tasks'`,
          [schema],
        );
        await client.query('COMMIT');
        expect(Number(stats.rows[0]!.upd)).toBe(40);
        expect(Number(stats.rows[0]!.hot)).toBe(40);
      } finally {
        client.release();
      }
    } finally {
      await close();
    }
  });
});

describe('migration 2 on a table with rows', () => {
  it('keeps every task, fixes finished_at, records task mode (undeclared, epoch 1) and keeps old fences binding', async () => {
    const schema = await db.newSchema('mig');
    const admin = adminPool(db);
    try {
      // A table at version 1, written by an older baton: one task of each status, one with a stale finish.
      await admin.query(`CREATE TABLE "${schema}".baton_migrations (
        version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      await admin.query(MIGRATIONS[0]!.sql(`"${schema}"`));
      await admin.query(`INSERT INTO "${schema}".baton_migrations (version, name) VALUES (1, 'tasks table')`);
      await admin.query(
        `INSERT INTO "${schema}".tasks (kind, status, fence, attempts, finished_at) VALUES
           ('p', 'pending', NULL, 0, NULL), ('r', 'running', 40, 1, NULL), ('d', 'done', 7, 1, NULL),
           ('x', 'dead', 8, 5, now()), ('f', 'failed', 9, 1, now())`,
      );
      const source = new PostgresTaskSource({
        connection: { connectionString: db.connectionString, poolSize: 2 },
        schema,
      });
      try {
        expect((await source.migrate()).applied).toEqual(MIGRATIONS.slice(1).map((m) => m.version));
        const rows = await admin.query<{ kind: string; open: boolean }>(
          `SELECT kind, finished_at IS NULL AS open FROM "${schema}".tasks ORDER BY id`,
        );
        expect(rows.rows).toEqual([
          { kind: 'p', open: true },
          { kind: 'r', open: true },
          { kind: 'd', open: false },
          { kind: 'x', open: false },
          { kind: 'f', open: true },
        ]);
        expect(await source.leaseLayout()).toBeNull();
        const running = (await source.list({ kind: 'r' }))[0]!;
        // Fences written before the migration still bind task mode: a lower fence is stale.
        expect(await source.claim(running.id, 39, 'w')).toEqual({ claimed: false, reason: 'stale' });
        expect((await source.claim(running.id, 41, 'w')).claimed).toBe(true);
        const layout = await source.declareLeaseLayout({ mode: 'task', locks: 'consul' });
        expect(layout).toEqual({ mode: 'task', buckets: null, locks: 'consul', epoch: 1 });
        expect(await source.complete(running.id, 41, 'ok', { epoch: 1 })).toEqual({ applied: true });
      } finally {
        await source.close();
      }
    } finally {
      await admin.end();
    }
  });
});

describe('layout changes', () => {
  it('a change waits for claims in flight and the claims after it see the new layout', async () => {
    const { source, schema, admin, close } = await freshSource(db);
    try {
      const layout = await source.declareLeaseLayout({ mode: 'task' });
      const ids = await source.enqueue(Array.from({ length: 30 }, (_, n) => ({ kind: 'x', payload: { n } })));
      // Claims race the change; every claim either happened before it (and blocks it while running) or
      // is refused after it: never a task-mode claim applied under the bucket layout.
      const claims = ids.map((id, n) =>
        source.claim(id, n + 1, 'w', { epoch: layout.epoch }).then(async (result) => {
          if (result.claimed) await source.complete(id, n + 1, 'ok', { epoch: layout.epoch });
          return result;
        }),
      );
      const change = (async () => {
        for (;;) {
          try {
            return await source.changeLeaseLayout({ mode: 'bucket', buckets: 2 });
          } catch (error) {
            if ((error as { code?: string }).code !== 'INVALID_ARGUMENT') throw error;
          }
        }
      })();
      const results = await Promise.all(claims);
      const changed = await change;
      expect(changed.epoch).toBe(layout.epoch + 1);
      const refused = results.filter((r) => !r.claimed).map((r) => (r.claimed ? '' : r.reason));
      expect(new Set(refused)).toEqual(new Set(refused.length ? ['layout'] : []));
      const epochs = await admin.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM "${schema}".tasks WHERE status = 'running'`,
      );
      expect(epochs.rows[0]!.n).toBe(0);
    } finally {
      await close();
    }
  }, 60_000);
});
