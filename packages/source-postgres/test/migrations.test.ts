import { randomSchemaName, type TestDatabase, testDatabase } from '@baton/test-servers/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LATEST_VERSION,
  MIGRATIONS,
  migrate,
  migrationLockKey,
  PostgresTaskSource,
  quoteIdentifier,
  validateSchemaName,
} from '../src/index.js';
import { adminPool } from './support.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await testDatabase();
});
afterAll(async () => {
  await db?.close();
});

/** A schema name nobody created yet, dropped with the test database. */
async function unusedSchema(): Promise<string> {
  const name = await db.newSchema('mig');
  const admin = adminPool(db);
  await admin.query(`DROP SCHEMA "${name}"`);
  await admin.end();
  return name;
}

describe('migrations', () => {
  it('create the schema, the versioned migrations table, the tasks table and its indexes', async () => {
    const schema = await unusedSchema();
    const admin = adminPool(db);
    try {
      const result = await migrate(admin, schema);
      expect(result).toEqual({ from: 0, to: LATEST_VERSION, applied: MIGRATIONS.map((m) => m.version) });
      const versions = await admin.query(
        `SELECT version, name FROM "${schema}".baton_migrations ORDER BY version`,
      );
      expect(versions.rows).toEqual(MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
      const indexes = await admin.query<{ indexname: string; indexdef: string }>(
        'SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 ORDER BY indexname',
        [schema],
      );
      const byName = Object.fromEntries(indexes.rows.map((r) => [r.indexname, r.indexdef]));
      const taskIndexes = indexes.rows.filter((r) => / ON \S+\.tasks /.test(r.indexdef));
      expect(taskIndexes.map((r) => r.indexname).sort()).toEqual([
        'tasks_finished_idx',
        'tasks_key_key',
        'tasks_open_idx',
        'tasks_pkey',
      ]);
      expect(byName.tasks_open_idx).toMatch(/\(shard, id\) WHERE \(finished_at IS NULL\)/);
      expect(byName.tasks_finished_idx).toMatch(/\(finished_at\) WHERE \(finished_at IS NOT NULL\)/);
      // A claim or a retryable failure changes status, fence, attempts: no index may mention them, or the
      // update cannot be HOT (PostgreSQL counts columns of index predicates too).
      for (const { indexdef } of taskIndexes)
        expect(indexdef).not.toMatch(/status|fence|attempts|claimed_at/);
    } finally {
      await admin.end();
    }
  });

  it('are idempotent: a second run applies nothing and keeps the data', async () => {
    const schema = await unusedSchema();
    const source = new PostgresTaskSource({ connection: { connectionString: db.connectionString }, schema });
    try {
      await source.migrate();
      const [id] = await source.enqueue({ kind: 'keep-me' });
      expect(await source.migrate()).toEqual({ from: LATEST_VERSION, to: LATEST_VERSION, applied: [] });
      expect((await source.get(id!))?.kind).toBe('keep-me');
    } finally {
      await source.close();
    }
  });

  it('run once when many servers start at the same moment (advisory lock)', async () => {
    const schema = await unusedSchema();
    const sources = Array.from(
      { length: 6 },
      () =>
        new PostgresTaskSource({
          connection: { connectionString: db.connectionString, poolSize: 2 },
          schema,
        }),
    );
    try {
      const results = await Promise.all(sources.map((s) => s.migrate()));
      expect(results.filter((r) => r.applied.length > 0)).toHaveLength(1);
      for (const r of results) expect(r.to).toBe(LATEST_VERSION);
      const admin = adminPool(db);
      const rows = await admin.query(`SELECT count(*)::int AS n FROM "${schema}".baton_migrations`);
      await admin.end();
      expect(rows.rows[0]).toEqual({ n: MIGRATIONS.length });
      // Every source can use the schema.
      const ids = await Promise.all(sources.map((s, i) => s.enqueue({ kind: `from-${i}` })));
      expect(new Set(ids.flat()).size).toBe(sources.length);
    } finally {
      await Promise.all(sources.map((s) => s.close()));
    }
  });

  // PGlite runs one transaction at a time, so only a real server can show a migration waiting for the lock.
  it.skipIf(!process.env.DATABASE_URL)('wait for the migration lock held by another session', async () => {
    const schema = await unusedSchema();
    const admin = adminPool(db);
    const holder = await admin.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock($1::bigint)', [migrationLockKey(schema)]);
      let finished = false;
      const running = migrate(admin, schema).then((r) => {
        finished = true;
        return r;
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(finished).toBe(false);
      await holder.query('COMMIT');
      expect((await running).applied).toEqual(MIGRATIONS.map((m) => m.version));
    } finally {
      holder.release();
      await admin.end();
    }
  });

  it('leave a schema migrated by a newer baton alone', async () => {
    const schema = await unusedSchema();
    const admin = adminPool(db);
    try {
      await migrate(admin, schema);
      await admin.query(
        `INSERT INTO "${schema}".baton_migrations (version, name) VALUES (99, 'from the future')`,
      );
      expect(await migrate(admin, schema)).toEqual({ from: 99, to: 99, applied: [] });
    } finally {
      await admin.end();
    }
  });

  it('are needed before use: an unmigrated schema fails with RESOURCE_NOT_FOUND naming the fix', async () => {
    const schema = await unusedSchema();
    const source = new PostgresTaskSource({ connection: { connectionString: db.connectionString }, schema });
    try {
      const error = await source.enqueue({ kind: 'x' }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'RESOURCE_NOT_FOUND', backend: 'postgres' });
      expect((error as Error).message).toMatch(/migrate/);
      expect(['3F000', '42P01']).toContain((error as { cause: { code: string } }).cause.code);
    } finally {
      await source.close();
    }
  });

  it('use one lock per schema', () => {
    expect(migrationLockKey('baton')).toMatch(/^-?\d+$/);
    expect(migrationLockKey('baton')).toBe(migrationLockKey('baton'));
    expect(migrationLockKey('baton')).not.toBe(migrationLockKey('baton2'));
  });
});

describe('schema names', () => {
  it('accept lowercase identifiers and quote them', () => {
    for (const name of ['baton', '_x', 'a1_b2', 'z'.repeat(63), randomSchemaName('t')]) {
      expect(validateSchemaName(name)).toBe(name);
      expect(quoteIdentifier(name)).toBe(`"${name}"`);
    }
  });

  it('reject anything that could break out of an identifier, or is reserved', () => {
    const bad = [
      '',
      'Baton',
      'my-schema',
      '1abc',
      'a'.repeat(64),
      'x"; DROP TABLE tasks; --',
      'a b',
      'ünï',
      'pg_catalog',
      'pg_anything',
      'public.tasks',
      42,
    ];
    for (const name of bad) {
      expect(() => validateSchemaName(name), String(name)).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
      expect(
        () =>
          new PostgresTaskSource({
            connection: { connectionString: db.connectionString },
            schema: name as string,
          }),
        String(name),
      ).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
    expect(() => validateSchemaName(null)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => quoteIdentifier('a"b')).toThrow();
  });

  it('work end to end with an unusual valid name', async () => {
    const schema = `_${randomSchemaName('odd')}9`;
    const admin = adminPool(db);
    const source = new PostgresTaskSource({ connection: { connectionString: db.connectionString }, schema });
    try {
      await source.migrate();
      const [id] = await source.enqueue({ kind: 'odd' });
      expect((await source.claim(id!, 1, 'w')).claimed).toBe(true);
    } finally {
      await source.close();
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.end();
    }
  });
});
