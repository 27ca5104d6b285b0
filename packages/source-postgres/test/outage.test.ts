import { createServer } from 'node:net';
import type { BatonError } from '@baton/core';
import { type TestDatabase, testDatabase } from '@baton/test-servers/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresTaskSource, PostgresTaskSource } from '../src/index.js';
import { adminPool, freshSource } from './support.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await testDatabase();
});
afterAll(async () => {
  await db?.close();
});

/** A local port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function expectUnavailable(error: unknown): BatonError {
  expect(error).toMatchObject({ code: 'UNAVAILABLE', backend: 'postgres', retryable: true });
  expect((error as BatonError).cause).toBeInstanceOf(Error);
  return error as BatonError;
}

describe('the database going away', () => {
  it('an unreachable server is UNAVAILABLE with the connection error as cause, for every operation', async () => {
    const port = await closedPort();
    const source = new PostgresTaskSource({
      connection: {
        connectionString: `postgres://postgres@127.0.0.1:${port}/postgres`,
        connectTimeoutMs: 2_000,
      },
    });
    try {
      const attempts: Array<Promise<unknown>> = [
        source.enqueue({ kind: 'x' }),
        source.claim('1', 1, 'w'),
        source.complete('1', 1),
        source.fail('1', 1, { message: 'x' }),
        source.get('1'),
        source.stats(),
        source.list(),
        source.retry('1'),
        source.migrate(),
        source.due()[Symbol.asyncIterator]().next(),
      ];
      for (const attempt of attempts) {
        const error = expectUnavailable(await attempt.catch((e: unknown) => e));
        expect((error.cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
      }
    } finally {
      await source.close();
    }
  });

  it('createPostgresTaskSource fails with UNAVAILABLE when it cannot migrate, and leaves nothing open', async () => {
    const port = await closedPort();
    const error = await createPostgresTaskSource({
      DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/postgres`,
      BATON_PG_CONNECT_TIMEOUT: '2s',
    }).catch((e: unknown) => e);
    expectUnavailable(error);
  });

  it('a statement cut off by the server is UNAVAILABLE; the source works again right after', async () => {
    const errors: BatonError[] = [];
    const { source, schema, close } = await freshSource(db, { onError: (e) => errors.push(e) });
    const blocker = adminPool(db);
    try {
      const [id] = await source.enqueue({ kind: 'x' });
      await source.get(id!); // leaves an idle connection in the pool, which the server will cut too
      // Make the claim wait: a real server waits for the row lock, PGlite for the open transaction.
      const holder = await blocker.connect();
      holder.on('error', () => {}); // its connection is cut below on purpose
      await holder.query('BEGIN');
      await holder.query(`SELECT id FROM "${schema}".tasks WHERE id = $1 FOR UPDATE`, [id]);
      const claim = source.claim(id!, 1, 'w').catch((e: unknown) => e);
      await new Promise((resolve) => setTimeout(resolve, 200));
      await db.dropConnections();
      const error = expectUnavailable(await claim);
      if (db.kind === 'postgres') expect(error.cause).toMatchObject({ code: '57P01' });
      holder.release(true);

      // The pool replaces the dead connections: the claim goes through now.
      const again = await source.claim(id!, 1, 'w');
      expect(again.claimed).toBe(true);
      expect(await source.complete(id!, 1, 'ok')).toEqual({ applied: true });
      expect(errors.every((e) => e.code === 'UNAVAILABLE')).toBe(true);
    } finally {
      await blocker.end();
      await close();
    }
  });

  // Refusing connections for a while is something only the embedded server can do from inside a test.
  it.skipIf(!!process.env.DATABASE_URL)(
    'PGlite: while the server is down every call fails UNAVAILABLE, mid-pass too; afterwards all is well',
    async () => {
      const server = db.pglite!;
      const { source, close } = await freshSource(db);
      try {
        const ids = await source.enqueue(
          Array.from({ length: 10 }, (_, n) => ({ kind: 'x', payload: { n } })),
        );
        const iterator = source.due({ pageSize: 3 })[Symbol.asyncIterator]();
        const seen: string[] = [];
        for (let i = 0; i < 3; i++) seen.push(((await iterator.next()).value as { id: string }).id);
        await server.suspend();
        try {
          expectUnavailable(await iterator.next().catch((e: unknown) => e));
          expectUnavailable(await source.enqueue({ kind: 'x' }).catch((e: unknown) => e));
          expectUnavailable(await source.claim(ids[0]!, 1, 'w').catch((e: unknown) => e));
        } finally {
          await server.resume();
        }
        const all: string[] = [];
        for await (const task of source.due({ pageSize: 3 })) all.push(task.id);
        expect(all.sort()).toEqual([...ids].sort());
        expect((await source.claim(ids[0]!, 1, 'w')).claimed).toBe(true);
        expect(seen).toHaveLength(3);
      } finally {
        await close();
      }
    },
  );
});
