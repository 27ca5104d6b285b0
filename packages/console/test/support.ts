import { Election, MemoryLockProvider } from '@baton/core';
import { PostgresTaskSource } from '@baton/source-postgres';
import type { TestDatabase } from '@baton/test-servers/pglite';
import pg from 'pg';
import {
  type ActionLogEntry,
  type RunningConsole,
  type StartConsoleOptions,
  startConsole,
} from '../src/index.js';

export const TOKEN = 'test-token-0123456789abcdef';

/** A migrated source in a fresh schema, a raw pool, in-process locks and a console on a free port. */
export async function consoleSetup(
  db: TestDatabase,
  options: Partial<StartConsoleOptions> = {},
): Promise<{
  console: RunningConsole;
  source: PostgresTaskSource;
  admin: pg.Pool;
  locks: MemoryLockProvider;
  schema: string;
  actions: ActionLogEntry[];
  url(path: string): string;
  close(): Promise<void>;
}> {
  const schema = await db.newSchema('console');
  const source = new PostgresTaskSource({
    schema,
    connection: { connectionString: db.connectionString, poolSize: 4 },
    backoff: { baseMs: 1, maxMs: 1 },
  });
  await source.migrate();
  const admin = new pg.Pool({ connectionString: db.connectionString, max: 3 });
  admin.on('error', () => {});
  const locks = new MemoryLockProvider({ lockDelayMs: 0 });
  const actions: ActionLogEntry[] = [];
  const running = await startConsole({
    source,
    db: admin,
    locks,
    port: 0,
    refreshMs: 250,
    finishedCountMs: 250,
    elections: ['svc/reports/leader'],
    onAction: (entry) => actions.push(entry),
    ...options,
  });
  return {
    console: running,
    source,
    admin,
    locks,
    schema,
    actions,
    url: (path) => new URL(path, running.url).toString(),
    close: async () => {
      await running.close();
      await locks.close();
      await source.close();
      await admin.end();
    },
  };
}

/** Counts per status and kind straight from the table. */
export async function databaseCounts(admin: pg.Pool, schema: string): Promise<Map<string, number>> {
  const { rows } = await admin.query<{ status: string; kind: string; n: string }>(
    `SELECT status, kind, count(*)::text AS n FROM "${schema}".tasks GROUP BY status, kind`,
  );
  return new Map(rows.map((r) => [`${r.kind}/${r.status}`, Number(r.n)]));
}

export { Election };
