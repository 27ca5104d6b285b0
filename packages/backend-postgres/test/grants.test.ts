import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { grantsHint } from '../src/index.js';
import { lockDatabase, makeProvider } from './harness.js';

const database = lockDatabase();

// Roles are objects of the whole server, and PGlite checks no passwords: this runs on a real server only.
describe.runIf(process.env.DATABASE_URL)(
  'postgres locks: least privilege (docs/backends/postgres-locks.md)',
  () => {
    it('runs on exactly the documented grants, and names them when they are missing', async () => {
      const db = database.db();
      const admin = database.admin();
      const schema = await db.newSchema('locks_grants');
      const role = `baton_worker_${randomBytes(4).toString('hex')}`;
      const password = randomBytes(12).toString('hex');
      const owner = makeProvider(db.connectionString, { schema });
      await owner.migrate();
      await owner.close();
      await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
      const url = new URL(db.connectionString);
      url.username = role;
      url.password = password;
      const settings = { schema, migrate: false, ttlMs: 2_000, lockDelayMs: 0, pollIntervalMs: 200 };
      try {
        const denied = makeProvider(url.toString(), settings);
        try {
          const error = await denied.openSession().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(error).toMatchObject({ code: 'PERMISSION_DENIED' });
          expect((error as Error).message).toContain(grantsHint(schema));
        } finally {
          await denied.close();
        }

        // The grants as the docs print them, for this schema and role.
        for (const statement of grantsHint(schema).split('; ')) {
          await admin.query(statement.replaceAll('<role>', role));
        }
        const worker = makeProvider(url.toString(), settings);
        try {
          const session = await worker.openSession();
          const lease = await session.tryAcquire('grants/key', { value: 'v1' });
          expect(lease?.fence).toBeGreaterThan(0);
          await lease?.publish('v2');
          expect(await worker.getHolder('grants/key')).toMatchObject({ value: 'v2', sessionId: session.id });
          expect((await worker.list('grants/')).map((h) => h.key)).toEqual(['grants/key']);
          const controller = new AbortController();
          for await (const holder of worker.watch('grants/key', { signal: controller.signal })) {
            expect(holder?.fence).toBe(lease?.fence);
            controller.abort();
          }
          expect(await lease?.release()).toBe(true);
          await worker.sweep();
          expect(await worker.forceRelease('grants/key')).toBe(false);
          await session.destroy();
        } finally {
          await worker.close();
        }
      } finally {
        await admin.query(`DROP OWNED BY ${role}`);
        await admin.query(`DROP ROLE ${role}`);
      }
    });
  },
);
