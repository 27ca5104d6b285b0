import { type TestDatabase, testDatabase } from '@baton/test-servers/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baton, Running } from './helpers.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await testDatabase();
});
afterAll(async () => {
  await db?.close();
});

describe('baton console', () => {
  it('refuses bad options with exit code 2 naming the flag or variable', async () => {
    const port = await baton(['console', '--port', '70000'], { env: { DATABASE_URL: db.connectionString } });
    expect(port.code).toBe(2);
    expect(port.stderr).toMatch(/--port/);
    const refresh = await baton(['console', '--refresh', '10'], {
      env: { DATABASE_URL: db.connectionString },
    });
    expect(refresh.code).toBe(2);
    expect(refresh.stderr).toMatch(/--refresh/);
    const token = await baton(['console'], {
      env: { DATABASE_URL: db.connectionString, BATON_CONSOLE_TOKEN: 'short' },
    });
    expect(token.code).toBe(2);
    expect(token.stderr).toMatch(/BATON_CONSOLE_TOKEN must be at least 16 characters/);
  });

  it('serves the API on 127.0.0.1 from the same database settings as the worker, until SIGTERM', async () => {
    const schema = await db.newSchema('cli_console');
    const env = { DATABASE_URL: db.connectionString, BATON_PG_SCHEMA: schema };
    expect((await baton(['tasks', 'enqueue', 'mail', '--count', '3'], { env })).code).toBe(0);
    const running = new Running(['--json', 'console', '--port', '0'], { env });
    try {
      const line = await running.waitFor((l) => typeof l.url === 'string');
      expect(line).toMatchObject({ readOnly: true });
      const url = new URL(String(line.url));
      expect(url.hostname).toBe('127.0.0.1');
      const snapshot = (await (await fetch(new URL('/api/snapshot', url))).json()) as {
        counts: { open: Array<{ status: string; kind: string; n: number }> };
      };
      expect(snapshot.counts.open).toEqual([{ status: 'pending', kind: 'mail', n: 3 }]);
      const retry = await fetch(new URL('/api/tasks/1/retry', url), { method: 'POST' });
      expect(retry.status).toBe(403);
    } finally {
      running.kill('SIGTERM');
    }
    expect(await running.exited).toBe(143);
  });

  it('takes the retention ages from the worker flags and variables, and refuses a bad one', async () => {
    const bad = await baton(['console', '--retain-done', 'soon'], {
      env: { DATABASE_URL: db.connectionString },
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--retain-done/);
    const badEnv = await baton(['console'], {
      env: { DATABASE_URL: db.connectionString, BATON_RETAIN_DEAD: 'soon' },
    });
    expect(badEnv.code).toBe(2);
    expect(badEnv.stderr).toMatch(/BATON_RETAIN_DEAD/);
    const schema = await db.newSchema('cli_console_retain');
    const env = { DATABASE_URL: db.connectionString, BATON_PG_SCHEMA: schema, BATON_RETAIN_DEAD: '720h' };
    const running = new Running(['--json', 'console', '--port', '0', '--retain-done', '168h'], { env });
    try {
      const line = await running.waitFor((l) => typeof l.url === 'string');
      const snapshot = (await (await fetch(new URL('/api/snapshot', String(line.url)))).json()) as {
        storage: { retention: unknown };
      };
      expect(snapshot.storage.retention).toEqual({
        done: { afterMs: 168 * 3_600_000, count: 0, capped: false },
        dead: { afterMs: 720 * 3_600_000, count: 0, capped: false },
      });
    } finally {
      running.kill('SIGTERM');
    }
    expect(await running.exited).toBe(143);
  });
});
