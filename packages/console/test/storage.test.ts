import { applyRetention } from '@baton/source-postgres';
import { type TestDatabase, testDatabase } from '@baton/test-servers/pglite';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LIMITS, type Snapshot } from '../src/index.js';
import { consoleSetup } from './support.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await testDatabase();
});
afterAll(async () => {
  await db?.close();
});
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((fn) => fn()));
});

const HOUR = 3_600_000;

/** Inserts `n` finished tasks of `status`, finished `ageMs` ago. */
async function finished(
  admin: import('pg').Pool,
  schema: string,
  n: number,
  status: 'done' | 'dead',
  ageMs: number,
): Promise<void> {
  await admin.query(
    `INSERT INTO "${schema}".tasks (kind, status, attempts, claimed_at, finished_at)
     SELECT 'old', $2, 1, now() - $3::double precision * interval '1 millisecond',
            now() - $3::double precision * interval '1 millisecond'
       FROM generate_series(1, $1::int)`,
    [n, status, ageMs],
  );
}

describe('storage and retention', () => {
  it('shows the table size, the row estimate and how many tasks the policy removes now', async () => {
    const setup = await consoleSetup(db, { retention: { doneAfterMs: HOUR, deadAfterMs: 24 * HOUR } });
    cleanups.push(setup.close);
    const { admin, schema, source, console: running } = setup;
    await finished(admin, schema, 30, 'done', 2 * HOUR); // removed by doneAfterMs
    await finished(admin, schema, 5, 'done', 60_000); // too young
    await finished(admin, schema, 7, 'dead', 2 * HOUR); // too young for deadAfterMs
    await finished(admin, schema, 4, 'dead', 48 * HOUR); // removed
    await source.enqueue(Array.from({ length: 9 }, () => ({ kind: 'open' })));
    await admin.query(`ANALYZE "${schema}".tasks`);

    const snapshot: Snapshot = await running.refresher.refresh();
    const size = await admin.query(
      `SELECT pg_total_relation_size(c.oid)::bigint::text AS bytes, c.reltuples::float8 AS reltuples
         FROM pg_class AS c WHERE c.oid = '"${schema}".tasks'::regclass`,
    );
    expect(snapshot.storage.bytes).toBe(Number(size.rows[0].bytes));
    expect(snapshot.storage.bytes).toBeGreaterThan(0);
    expect(snapshot.storage.rowEstimate).toBe(55);
    expect(snapshot.storage.retention).toEqual({
      done: { afterMs: HOUR, count: 30, capped: false },
      dead: { afterMs: 24 * HOUR, count: 4, capped: false },
    });
    // What it says is what retention then removes.
    expect(await applyRetention(source, { doneAfterMs: HOUR, deadAfterMs: 24 * HOUR })).toMatchObject({
      done: 30,
      dead: 4,
    });
    // The recount after an action (here: invalidate) shows nothing left to remove.
    running.refresher.invalidate();
    const after = await running.refresher.refresh();
    expect(after.storage.retention).toEqual({
      done: { afterMs: HOUR, count: 0, capped: false },
      dead: { afterMs: 24 * HOUR, count: 0, capped: false },
    });
  });

  it('says when there is no policy, and has no estimate before the first ANALYZE', async () => {
    const setup = await consoleSetup(db);
    cleanups.push(setup.close);
    const snapshot = await setup.console.refresher.refresh();
    expect(snapshot.storage.retention).toBeNull();
    expect(snapshot.storage.rowEstimate).toBeNull();
    const body = (await (await fetch(setup.url('/api/snapshot'))).json()) as Snapshot;
    expect(body.storage.retention).toBeNull();
  });

  it(`reads at most LIMITS.retentionScan finished rows per status and then says "at least"`, async () => {
    const setup = await consoleSetup(db, { retention: { doneAfterMs: HOUR } });
    cleanups.push(setup.close);
    const { admin, schema } = setup;
    // Older dead rows come first in the index: they use up the scan, the done count is a lower bound.
    await finished(admin, schema, 100, 'dead', 72 * HOUR);
    await finished(admin, schema, LIMITS.retentionScan, 'done', 2 * HOUR);
    const snapshot = await setup.console.refresher.refresh();
    expect(snapshot.storage.retention).toEqual({
      done: { afterMs: HOUR, count: LIMITS.retentionScan - 100, capped: true },
      dead: null,
    });
  });

  it('refuses a retention age outside the worker policy bounds', async () => {
    await expect(consoleSetup(db, { retention: { doneAfterMs: -1 } })).rejects.toThrow(/doneAfterMs/);
  });
});
