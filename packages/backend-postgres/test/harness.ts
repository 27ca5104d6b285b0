import { startFaultProxy } from '@baton/test-servers/fault-proxy';
import { type TestDatabase, testDatabase } from '@baton/test-servers/pglite';
import type { LockHarness } from '@baton/testkit';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import {
  PgLockProvider,
  type PgLockProviderOptions,
  type PgLockSession,
  pgLockConfigSchema,
} from '../src/index.js';

/** Errors of idle admin connections, as the server closed them. */
export const adminErrors: Error[] = [];

/** PGlite in process, or the PostgreSQL at DATABASE_URL, for one test file, and an admin pool on it. */
export function lockDatabase(): { db: () => TestDatabase; admin: () => pg.Pool } {
  let db: TestDatabase | undefined;
  let admin: pg.Pool | undefined;
  let closing = false;
  beforeAll(async () => {
    db = await testDatabase();
    admin = new pg.Pool({ connectionString: db.connectionString, max: 2 });
    // Reported while in use (tests that terminate every connection check them); after teardown began,
    // the test database may terminate idle connections.
    admin.on('error', (error) => {
      if (!closing) adminErrors.push(error);
    });
  }, 120_000);
  afterAll(async () => {
    closing = true;
    await admin?.end();
    await db?.close();
  });
  return {
    db: () => {
      if (!db) throw new Error('database not started');
      return db;
    },
    admin: () => {
      if (!admin) throw new Error('database not started');
      return admin;
    },
  };
}

/** `url` with its host and port replaced by `hostPort` (a proxy in front of the server). */
export function viaProxy(url: string, hostPort: string): string {
  const parsed = new URL(url);
  const [host, port] = hostPort.split(':') as [string, string];
  parsed.hostname = host;
  parsed.port = port;
  return parsed.toString();
}

/** A provider on `url` with the schema's defaults and the given settings. */
export function makeProvider(
  url: string,
  settings: Record<string, unknown>,
  extra: Partial<PgLockProviderOptions> = {},
): PgLockProvider {
  return new PgLockProvider({ ...pgLockConfigSchema.parse({ url, ...settings }), ...extra });
}

/**
 * The conformance harness: a schema per test, a provider behind its own TCP proxy, so that
 * `breakTransport` resets that provider's connections (and refuses new ones) while the server runs on.
 */
export function pgHarnessFactory(label: string, ttlMs: number): () => Promise<LockHarness> {
  const database = lockDatabase();
  return async () => {
    const db = database.db();
    const schema = await db.newSchema(label);
    const target = new URL(db.connectionString);
    const proxy = await startFaultProxy(`${target.hostname}:${target.port || 5432}`);
    const errors: unknown[] = [];
    const provider = makeProvider(
      viaProxy(db.connectionString, proxy.address),
      { schema, ttlMs, lockDelayMs: 0, connectTimeoutMs: 2_000, pollIntervalMs: 200 },
      { onError: (error) => errors.push(error) },
    );
    await provider.migrate();
    const admin = database.admin();
    return {
      provider,
      sessionOptions: { ttlMs, lockDelayMs: 0 },
      inspect: async (key) => {
        const { rows } = await admin.query(
          `SELECT l.fence::text AS fence, h.id::text AS holder FROM "${schema}".locks l
           LEFT JOIN "${schema}".sessions h ON h.id = l.session_id AND h.expires_at > clock_timestamp()
           WHERE l.key = $1`,
          [key],
        );
        const row = rows[0] as { fence: string; holder: string | null } | undefined;
        return row ? { holder: row.holder ?? undefined, fence: Number(row.fence) } : null;
      },
      crash: async (session) => (session as PgLockSession).abandon(),
      breakTransport: async () => {
        proxy.setMode('reset');
        return async () => proxy.setMode('pass');
      },
      deleteKey: async (key) => {
        await admin.query(`DELETE FROM "${schema}".locks WHERE key = $1`, [key]);
      },
      close: async () => {
        await provider.close();
        await proxy.close();
      },
    };
  };
}
