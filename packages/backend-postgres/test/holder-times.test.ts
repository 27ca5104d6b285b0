import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { LATEST_LOCK_VERSION, LOCK_MIGRATIONS } from '../src/index.js';
import { lockDatabase, makeProvider } from './harness.js';

const database = lockDatabase();

describe('postgres locks: holder times (schema version 2)', () => {
  it('a lock granted under schema version 1 is still reported after the upgrade, without acquiredAt', async () => {
    const db = database.db();
    const admin = database.admin();
    const schema = await db.newSchema('locks_times_upgrade');
    const s = `"${schema}"`;
    // The schema as version 1 left it, and a lock its acquire() granted (no acquired_at column yet).
    await admin.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await admin.query(
      `CREATE TABLE ${s}.baton_migrations (version integer PRIMARY KEY, name text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    await admin.query(LOCK_MIGRATIONS[0]!.sql(schema));
    await admin.query(`INSERT INTO ${s}.baton_migrations (version, name) VALUES (1, 'v1')`);
    const oldSession = randomUUID();
    await admin.query(
      `INSERT INTO ${s}.sessions (id, name, ttl_ms, lock_delay_ms, expires_at, free_at)
       VALUES ($1, 'old worker', 60000, 0, clock_timestamp() + interval '60 seconds',
               clock_timestamp() + interval '60 seconds')`,
      [oldSession],
    );
    const granted = await admin.query(
      `SELECT alive, fence::text AS fence FROM ${s}.acquire($1, 'old', 'v', 0)`,
      [oldSession],
    );
    expect(granted.rows[0]).toMatchObject({ alive: true });

    const provider = makeProvider(db.connectionString, { schema, ttlMs: 2_000, lockDelayMs: 0 });
    try {
      expect(await provider.migrate()).toMatchObject({ from: 1, applied: [LATEST_LOCK_VERSION] });
      const old = await provider.getHolder('old');
      expect(old).toMatchObject({ sessionId: oldSession, fence: Number(granted.rows[0].fence), value: 'v' });
      expect(old).not.toHaveProperty('acquiredAt');
      expect(old?.leaseRemainingMs).toBeGreaterThan(50_000);
      expect(old?.leaseRemainingMs).toBeLessThanOrEqual(60_000);

      // Granted by the new acquire(): stamped with the database's clock, in the same statement.
      const session = await provider.openSession();
      const before = Date.now();
      const lease = await session.tryAcquire('new');
      const after = Date.now();
      const fresh = await provider.getHolder('new');
      expect(fresh).toMatchObject({ fence: lease!.fence, acquiredAtSource: 'server' });
      expect(fresh!.acquiredAt).toBeGreaterThanOrEqual(before - 100);
      expect(fresh!.acquiredAt).toBeLessThanOrEqual(after + 100);
      const { rows } = await admin.query(
        `SELECT floor(extract(epoch FROM acquired_at) * 1000)::bigint::text AS at FROM ${s}.locks WHERE key = 'new'`,
      );
      expect(fresh!.acquiredAt).toBe(Number(rows[0].at));
    } finally {
      await provider.close();
    }
  });
});
