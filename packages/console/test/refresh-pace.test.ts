import { type TestDatabase, testDatabase } from '@baton/test-servers/pglite';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Snapshot } from '../src/index.js';
import { MAX_READ_SHARE, nextRefreshDelay } from '../src/refresh-pace.js';
import { consoleSetup } from './support.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await testDatabase();
});
afterAll(async () => {
  await db?.close();
});

describe('nextRefreshDelay', () => {
  it('keeps the configured interval while reads are quick, and slows down so reads take a tenth at most', () => {
    expect(MAX_READ_SHARE).toBe(0.1);
    expect(nextRefreshDelay(2_000, 14)).toBe(2_000);
    expect(nextRefreshDelay(250, 27)).toBe(250);
    expect(nextRefreshDelay(250, 143)).toBe(1_287);
    expect(nextRefreshDelay(2_000, 336)).toBe(3_024);
    for (const readMs of [0, 1, 50, 143, 400, 5_000]) {
      const delay = nextRefreshDelay(250, readMs);
      expect(readMs / (readMs + delay)).toBeLessThanOrEqual(MAX_READ_SHARE + 1e-9);
    }
  });
});

/** The same database, each statement held back `delayMs` first: a big table's slow reads, on a small one. */
function slowPool(connectionString: string, delayMs: number): pg.Pool {
  const pool = new pg.Pool({ connectionString, max: 3 });
  pool.on('error', () => {});
  const hold = () => new Promise((resolve) => setTimeout(resolve, delayMs));
  const slowQuery =
    (target: { query: (...args: never[]) => unknown }) =>
    async (...args: never[]) => {
      await hold();
      return target.query(...args);
    };
  const connect = pool.connect.bind(pool);
  Object.assign(pool, {
    query: slowQuery({ query: pool.query.bind(pool) as (...args: never[]) => unknown }),
    connect: async () => {
      const client = await connect();
      const query = client.query.bind(client) as (...args: never[]) => unknown;
      return Object.assign(client, { query: slowQuery({ query }) });
    },
  });
  return pool;
}

describe('the refresh loop on slow reads', () => {
  it('waits nine times the last read before the next (not --refresh 250 ms), and says so in the snapshot', async () => {
    const slow = slowPool(db.connectionString, 40);
    const setup = await consoleSetup(db, { db: slow, refreshMs: 250, elections: [] });
    try {
      const snapshots: Snapshot[] = [];
      const stop = setup.console.refresher.subscribe((snapshot) => snapshots.push(snapshot));
      try {
        while (snapshots.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
        const first = snapshots[0]!;
        // About ten statements at 40 ms each.
        expect(first.readMs).toBeGreaterThanOrEqual(300);
        expect(first.refreshMs).toBe(250);
        expect(first.nextRefreshMs).toBe(nextRefreshDelay(250, first.readMs));
        expect(first.nextRefreshMs).toBeGreaterThanOrEqual(2_700);
        // At the configured 250 ms, four more reads would have started by now.
        await new Promise((resolve) => setTimeout(resolve, 2_000));
        expect(snapshots).toHaveLength(1);
        expect(setup.console.refresher.refreshes).toBe(1);
        while (snapshots.length < 2) await new Promise((resolve) => setTimeout(resolve, 50));
        expect(snapshots[1]!.seq).toBe(2);
      } finally {
        stop();
      }
    } finally {
      await setup.close();
      await slow.end();
    }
  });
});
