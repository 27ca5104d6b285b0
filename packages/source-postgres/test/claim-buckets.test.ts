import type { BucketLeaseRef } from '@baton/core';
import { type TestDatabase, testDatabase } from '@baton/test-servers/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresTaskSource } from '../src/index.js';
import { statements } from '../src/statements.js';
import { freshSource } from './support.js';

// PostgreSQL-specific parts of claimBuckets; the contract itself is in conformance.test.ts.
let db: TestDatabase;
beforeAll(async () => {
  db = await testDatabase();
});
afterAll(async () => {
  await db?.close();
});

function leases(epoch: number, buckets: number, which: readonly number[], fence: number): BucketLeaseRef[] {
  return which.map((bucket) => ({ epoch, buckets, bucket, fence }));
}

describe('claimBuckets (PostgreSQL)', () => {
  it('reads about as many tasks as it claims, however many buckets it is given, and its updates are HOT', async () => {
    const { source, schema, admin, close } = await freshSource(db);
    try {
      const layout = await source.declareLeaseLayout({ mode: 'bucket', buckets: 16 });
      await source.enqueue(Array.from({ length: 3_200 }, (_, n) => ({ kind: 'x', payload: { n } })));
      const sql = statements(schema);
      const client = await admin.connect();
      try {
        // Counters of the current transaction: exactly the statement below, whatever else runs.
        await client.query('BEGIN');
        const all = [...Array(16).keys()];
        const { rows } = await client.query(sql.claimBuckets, [
          layout.epoch,
          16,
          source.shards / 16,
          all,
          all.map(() => 1),
          'w',
          50,
          30_000,
          [],
        ]);
        const stats = await client.query<{ fetched: string; upd: string; hot: string }>(
          `SELECT idx_tup_fetch::text AS fetched, n_tup_upd::text AS upd, n_tup_hot_upd::text AS hot
             FROM pg_stat_xact_user_tables WHERE schemaname = $1 AND relname = 'tasks'`,
          [schema],
        );
        await client.query('COMMIT');
        expect(rows).toHaveLength(50);
        // 50 read to pick them and 50 again by id to update them; a plan that read each bucket's first 50
        // before choosing would read 16 × 50.
        expect(Number(stats.rows[0]!.fetched)).toBeLessThanOrEqual(150);
        expect(Number(stats.rows[0]!.upd)).toBe(50);
        expect(Number(stats.rows[0]!.hot)).toBe(50);
      } finally {
        client.release();
      }
    } finally {
      await close();
    }
  });

  it('concurrent calls sharing buckets in opposite orders neither deadlock nor claim a task twice', async () => {
    const { source, close } = await freshSource(db, { poolSize: 4 });
    const other = new PostgresTaskSource({
      connection: { connectionString: db.connectionString, poolSize: 4 },
      schema: source.schema,
    });
    try {
      const layout = await source.declareLeaseLayout({ mode: 'bucket', buckets: 8 });
      const ids = await source.enqueue(
        Array.from({ length: 600 }, (_, n) => ({ kind: 'x', payload: { n } })),
      );
      const forward = [0, 1, 2, 3, 4, 5, 6, 7];
      const backward = [...forward].reverse();
      const claimedBy = new Map<string, number>();
      // The same lease (fence 3) used by two callers at once: each task must still be claimed once only.
      const drain = async (s: PostgresTaskSource, order: number[]) => {
        for (;;) {
          const results = await s.claimBuckets(leases(layout.epoch, 8, order, 3), 'w', 7);
          let n = 0;
          for (const result of results) {
            expect(result.ok).toBe(true);
            if (!result.ok) continue;
            for (const task of result.tasks) {
              claimedBy.set(task.id, (claimedBy.get(task.id) ?? 0) + 1);
              n++;
            }
          }
          if (n === 0) return;
        }
      };
      await Promise.all([
        drain(source, forward),
        drain(other, backward),
        drain(source, [3, 6, 0, 5, 2, 7, 1, 4]),
        drain(other, [4, 1, 7, 2, 5, 0, 6, 3]),
      ]);
      expect(claimedBy.size).toBe(ids.length);
      expect([...claimedBy.values()].every((n) => n === 1)).toBe(true);
    } finally {
      await other.close();
      await close();
    }
  }, 120_000);
});
