import { createLockProvider, registerBackend } from '@baton/core';
import { testDatabase } from '@baton/test-servers/pglite';
import { lockProviderSuite } from '@baton/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backend, PgRowsLockProvider } from '../pg-rows-backend.mjs';

/** PGlite in process, or the PostgreSQL at DATABASE_URL; every schema made here is dropped at the end. */
let database;
/** @type {pg.Pool} */
let admin;

beforeAll(async () => {
  database = await testDatabase();
  admin = new pg.Pool({ connectionString: database.connectionString, max: 2 });
  // pool.end() resolves before its sockets close; the database's teardown may still terminate one.
  admin.on('error', () => {});
}, 120_000);

afterAll(async () => {
  await admin?.end();
  await database?.close();
});

/** A harness per test: its own schema, and a pool wrapper whose transport the suite can break. */
async function harness() {
  const schema = await database.newSchema('pgrows');
  const pool = new pg.Pool({ connectionString: database.connectionString, max: 4 });
  pool.on('error', () => {});
  let broken = false;
  const transport = {
    query: (text, values) =>
      broken
        ? Promise.reject(
            Object.assign(new Error('connect ECONNREFUSED (injected)'), { code: 'ECONNREFUSED' }),
          )
        : pool.query(text, values),
    end: () => pool.end(),
  };
  // Long enough that a renewal queued behind others on one PGlite session still lands on a loaded machine.
  const ttlMs = 2_000;
  const provider = new PgRowsLockProvider({ schema, pool: transport, ttlMs, lockDelayMs: 0 });
  return {
    provider,
    sessionOptions: { ttlMs, lockDelayMs: 0 },
    inspect: async (key) => {
      const { rows } = await admin.query(
        `SELECT l.fence, s.id AS holder FROM "${schema}".locks l
         LEFT JOIN "${schema}".sessions s ON s.id = l.session_id AND s.expires_at > clock_timestamp()
         WHERE l.key = $1`,
        [key],
      );
      return rows[0] ? { holder: rows[0].holder ?? undefined, fence: Number(rows[0].fence) } : null;
    },
    crash: async (session) => session.abandon(),
    breakTransport: async () => {
      broken = true;
      return async () => {
        broken = false;
      };
    },
    deleteKey: async (key) => {
      await admin.query(`DELETE FROM "${schema}".locks WHERE key = $1`, [key]);
    },
    close: async () => {
      await provider.close();
      await pool.end();
    },
  };
}

describe('pg-rows backend: lock provider conformance', () => {
  lockProviderSuite(it, harness, { expiryBoundMs: 2_000, lockDelayMs: 800, granularityMs: 50 });
});

describe('pg-rows backend: configuration', () => {
  it('is chosen by name through createLockProvider, with env-mapped settings', async () => {
    registerBackend(backend, { replace: true });
    const provider = await createLockProvider({
      BATON_BACKEND: 'pg-rows',
      DATABASE_URL: database.connectionString,
      BATON_PG_LOCK_SCHEMA: await database.newSchema('pgrows_cfg'),
      BATON_SESSION_TTL: '2s',
    });
    try {
      expect(provider.backend).toBe('pg-rows');
      const session = await provider.openSession();
      expect(session.ttlMs).toBe(2_000);
      const lease = await session.tryAcquire('cfg/key');
      expect(lease?.fence).toBeGreaterThan(0);
    } finally {
      await provider.close();
    }
  });

  it('names the variable and the fix for a bad value', async () => {
    registerBackend(backend, { replace: true });
    await expect(
      createLockProvider({ BATON_BACKEND: 'pg-rows', BATON_SESSION_TTL: 'soon' }),
    ).rejects.toMatchObject({ code: 'CONFIG_INVALID', field: 'BATON_SESSION_TTL' });
  });

  it('loads from BATON_BACKEND_MODULE without registering in code', async () => {
    const provider = await createLockProvider({
      BATON_BACKEND: 'pg-rows',
      BATON_BACKEND_MODULE: new URL('../pg-rows-backend.mjs', import.meta.url).href,
      DATABASE_URL: database.connectionString,
      BATON_PG_LOCK_SCHEMA: await database.newSchema('pgrows_mod'),
    });
    await provider.close();
    expect(provider.backend).toBe('pg-rows');
  });

  it('reports an unreachable database as UNAVAILABLE, not as contention', async () => {
    const provider = new PgRowsLockProvider({ connectionString: 'postgres://postgres@127.0.0.1:1/postgres' });
    try {
      await expect(provider.openSession()).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    } finally {
      await provider.close();
    }
  });
});
