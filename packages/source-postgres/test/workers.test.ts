import {
  ManualClock,
  MemoryLockProvider,
  MemoryLockStore,
  WORKER_RECORD_PRUNE_BATCH,
  Worker,
  type WorkerBeat,
} from '@baton/core';
import { type TestDatabase, testDatabase } from '@baton/test-servers/pglite';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freshSource } from './support.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await testDatabase();
});
afterAll(async () => {
  await db?.close();
});

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function fresh() {
  const fresh = await freshSource(db);
  cleanups.push(fresh.close);
  return fresh;
}

const zero = { claimed: 0, completed: 0, failed: 0, dead: 0, leaseLost: 0, staleWrites: 0, errors: 0 };
const beat = (over: Partial<WorkerBeat> = {}): WorkerBeat => ({
  workerId: 'w1',
  instance: 'run-1',
  state: 'running',
  host: 'host-a',
  pid: 4242,
  uptimeMs: 1_500,
  mode: 'task',
  locks: 'consul',
  intervalMs: 10_000,
  running: 2,
  taskIds: ['7', '9'],
  counters: zero,
  ...over,
});

async function dbNow(admin: { query: (text: string) => Promise<{ rows: unknown[] }> }): Promise<number> {
  const { rows } = await admin.query('SELECT (extract(epoch FROM now()) * 1000)::float8 AS now');
  return Number((rows[0] as { now: number }).now);
}

describe('PostgresTaskSource heartbeats (workers table)', () => {
  it('one UPSERT per beat, stamped with the database clock; the previous beat is kept for rates', async () => {
    const { source, admin, schema } = await fresh();
    const before = await dbNow(admin);
    await source.heartbeat(beat());
    const after = await dbNow(admin);
    let [w] = await source.workers();
    expect(w).toMatchObject({
      workerId: 'w1',
      instance: 'run-1',
      state: 'running',
      host: 'host-a',
      pid: 4242,
      mode: 'task',
      locks: 'consul',
      intervalMs: 10_000,
      running: 2,
      taskIds: ['7', '9'],
      counters: zero,
      stoppedAt: null,
      previous: null,
    });
    // The database's now(), not this process's clock (which the beat does not even carry).
    expect(w!.beatAt.getTime()).toBeGreaterThanOrEqual(before - 1);
    expect(w!.beatAt.getTime()).toBeLessThanOrEqual(after + 1);
    expect(w!.beatAt.getTime() - w!.startedAt.getTime()).toBeCloseTo(1_500, 0);

    const firstAt = w!.beatAt;
    await source.heartbeat(
      beat({ uptimeMs: 11_500, running: 0, taskIds: [], counters: { ...zero, completed: 30 } }),
    );
    [w] = await source.workers();
    expect(w).toMatchObject({ running: 0, taskIds: [], counters: { ...zero, completed: 30 } });
    expect(w!.previous).toEqual({ beatAt: firstAt, counters: zero });
    // The start stays the first beat's, whatever later uptimes say.
    expect(w!.startedAt.getTime()).toBeCloseTo(firstAt.getTime() - 1_500, 0);
    const { rows } = await admin.query(`SELECT count(*)::int AS n FROM "${schema}".workers`);
    expect(rows[0]).toEqual({ n: 1 });
  });

  it('a stopped beat marks the row stopped; a restart under the same id starts the row over', async () => {
    const { source } = await fresh();
    await source.heartbeat(beat({ counters: { ...zero, completed: 3 } }));
    await source.heartbeat(beat({ state: 'stopped', counters: { ...zero, completed: 5 } }));
    let [w] = await source.workers();
    expect(w).toMatchObject({ state: 'stopped', counters: { ...zero, completed: 5 } });
    expect(w!.stoppedAt).toEqual(w!.beatAt);
    await source.heartbeat(beat({ instance: 'run-2', uptimeMs: 0 }));
    [w] = await source.workers();
    expect(w).toMatchObject({ instance: 'run-2', state: 'running', stoppedAt: null, previous: null });
    expect(w!.startedAt).toEqual(w!.beatAt);
  });

  it("a worker's first beat deletes rows silent for over a day (a bounded batch); other beats delete nothing", async () => {
    const { source, admin, schema } = await fresh();
    const table = `"${schema}".workers`;
    const old = WORKER_RECORD_PRUNE_BATCH + 5;
    for (let i = 0; i < old; i++) await source.heartbeat(beat({ workerId: `old-${i}` }));
    await source.heartbeat(beat({ workerId: 'recent', state: 'stopped' }));
    await admin.query(
      `UPDATE ${table} SET beat_at = now() - interval '25 hours' - id_age * interval '1 second'
         FROM (SELECT worker_id AS wid, row_number() OVER (ORDER BY worker_id) AS id_age FROM ${table}) AS n
        WHERE worker_id = n.wid AND worker_id LIKE 'old-%'`,
    );
    await admin.query(`UPDATE ${table} SET beat_at = now() - interval '23 hours' WHERE worker_id = 'recent'`);
    const count = async () =>
      Number((await admin.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n);

    await source.heartbeat(beat({ workerId: 'w1' }));
    expect(await count()).toBe(old + 2 - WORKER_RECORD_PRUNE_BATCH);
    // The same run beating again is not a first beat: nothing more goes.
    await source.heartbeat(beat({ workerId: 'w1' }));
    expect(await count()).toBe(old + 2 - WORKER_RECORD_PRUNE_BATCH);
    // The next worker to start takes the rest; a stopped worker of 23 hours ago stays.
    await source.heartbeat(beat({ workerId: 'w2' }));
    const left = await admin.query(`SELECT worker_id FROM ${table} ORDER BY worker_id`);
    expect(left.rows.map((r) => r.worker_id)).toEqual(['recent', 'w1', 'w2']);
  });

  it('refuses malformed beats before touching the database, and text that PostgreSQL cannot store', async () => {
    const { source } = await fresh();
    await expect(source.heartbeat(beat({ host: 'a\0b' }))).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(source.heartbeat(beat({ pid: 1.5 }))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(source.workers()).resolves.toEqual([]);
    // Hostile but valid text is stored as is.
    await source.heartbeat(beat({ workerId: `<img src=x onerror=alert(1)>'"; DROP TABLE x; --` }));
    expect((await source.workers())[0]!.workerId).toBe(`<img src=x onerror=alert(1)>'"; DROP TABLE x; --`);
  });

  it('a Worker on this source beats at start, on its interval and once stopped, whatever its own clock says', async () => {
    const { source } = await fresh();
    // The worker's wall clock is a year off: nothing the table shows may come from it.
    const clock = new ManualClock({ wallStart: Date.UTC(2027, 11, 6) });
    const locks = new MemoryLockProvider({ store: new MemoryLockStore({ clock }), ttlMs: 600_000 });
    const worker = new Worker({
      id: 'pg-beater',
      locks,
      source,
      clock,
      schedule: { every: 60_000 },
      wakeOnEnqueue: false,
      heartbeatEveryMs: 1_000,
      handler: () => 'ok',
    });
    const run = worker.run();
    const beats = async () => (await source.workers()).find((w) => w.workerId === 'pg-beater');
    await clock.advance(0);
    await until(async () => (await beats()) !== undefined, 'the first beat');
    await source.enqueue({ kind: 'k' });
    await clock.advance(60_000);
    await until(() => worker.stats().completed === 1, 'the task done');
    await clock.advance(1_000);
    await until(async () => (await beats())?.counters.completed === 1, 'a beat with the task counted');
    const stopped = worker.stop();
    await clock.advance(0);
    await stopped;
    await run;
    const w = await beats();
    expect(w).toMatchObject({
      state: 'stopped',
      mode: 'task',
      locks: 'memory',
      intervalMs: 1_000,
      running: 0,
    });
    // Stamped by the database (this machine's clock here, not the worker's, a year ahead). The start is the
    // database's now at the first beat minus the uptime then (0), and stays: the 61 s the worker's manual
    // clock moved since do not move it, only the database's clock does.
    expect(Math.abs(w!.beatAt.getTime() - Date.now())).toBeLessThan(60_000);
    expect(w!.stoppedAt).toEqual(w!.beatAt);
    expect(w!.startedAt.getTime()).toBeLessThanOrEqual(w!.beatAt.getTime());
    expect(w!.beatAt.getTime() - w!.startedAt.getTime()).toBeLessThan(60_000);
  });
});

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
