import { type LockProvider, MemoryLockProvider, type Task, Worker } from '@baton/core';
import { type TestDatabase, testDatabase } from '@baton/test-servers/pglite';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CONTENT_SECURITY_POLICY, LIMITS, type Snapshot, type TaskPage } from '../src/index.js';
import { LocksReader } from '../src/locks-view.js';
import { consoleSetup, databaseCounts, Election, TOKEN } from './support.js';

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

async function open(options: Parameters<typeof consoleSetup>[1] = {}) {
  const setup = await consoleSetup(db, options);
  cleanups.push(setup.close);
  return setup;
}

async function json<T>(
  url: string,
  init?: RequestInit,
): Promise<{ status: number; body: T; headers: Headers }> {
  const response = await fetch(url, init);
  return { status: response.status, body: (await response.json()) as T, headers: response.headers };
}

/** Marks tasks finished or failed behind the source's back, as workers would have left them. */
async function settle(
  admin: import('pg').Pool,
  schema: string,
  ids: string[],
  status: 'done' | 'dead' | 'failed',
) {
  const finished = status === 'failed' ? 'NULL' : 'now()';
  await admin.query(
    `UPDATE "${schema}".tasks SET status = $2, attempts = 1, claimed_at = now() - interval '50 milliseconds',
            finished_at = ${finished}, last_error = CASE WHEN $2 = 'done' THEN NULL ELSE 'boom ' || id END
      WHERE id = ANY($1::bigint[])`,
    [ids, status],
  );
}

describe('snapshot', () => {
  it('counts every status and kind exactly as the table does, and the last hour per minute', async () => {
    const { console: running, source, admin, schema, url } = await open();
    const a = await source.enqueue(Array.from({ length: 12 }, (_, n) => ({ kind: 'email', payload: { n } })));
    const b = await source.enqueue(Array.from({ length: 7 }, () => ({ kind: 'report' })));
    await source.enqueue({ kind: 'later', delayMs: 3_600_000 });
    await settle(admin, schema, a.slice(0, 5), 'done');
    await settle(admin, schema, a.slice(5, 7), 'dead');
    await settle(admin, schema, b.slice(0, 3), 'failed');
    await settle(admin, schema, b.slice(3, 4), 'done');

    const { body } = await json<Snapshot>(url('/api/snapshot'));
    const shown = new Map<string, number>();
    for (const row of [...body.counts.open, ...body.counts.finished])
      shown.set(`${row.kind}/${row.status}`, row.n);
    expect(shown).toEqual(await databaseCounts(admin, schema));
    // Due and not running: 5 pending emails, 3 pending reports (failed ones wait for their backoff of 1 ms).
    const due = await admin.query(
      `SELECT count(*)::int AS n FROM "${schema}".tasks WHERE status IN ('pending', 'failed') AND run_at <= now()`,
    );
    const fresh = await running.refresher.refresh();
    expect(fresh.backlog).toEqual({ due: due.rows[0].n });
    const finished = fresh.minutes.reduce((sum, m) => sum + m.done + m.dead, 0);
    expect(finished).toBe(8);
    expect(fresh.minutes.reduce((sum, m) => sum + m.dead, 0)).toBe(2);
    expect(fresh.minutes.every((m) => m.runMs === null || m.runMs >= 0)).toBe(true);
    expect(fresh.problems.dead.map((t) => t.id).sort()).toEqual(a.slice(5, 7).sort());
    expect(fresh.problems.failed.map((t) => t.id).sort()).toEqual(b.slice(0, 3).sort());
    expect(fresh.problems.dead[0]!.lastError).toMatch(/^boom /);
  });

  it('reads a snapshot at one moment: while workers finish tasks, every task is counted exactly once', async () => {
    const { source, console: running } = await open();
    const total = 400;
    await source.enqueue(Array.from({ length: total }, (_, n) => ({ kind: n % 2 ? 'a' : 'b' })));
    const workerLocks = new MemoryLockProvider({ lockDelayMs: 0 });
    cleanups.push(() => workerLocks.close());
    const worker = new Worker({
      locks: workerLocks,
      source,
      concurrency: 8,
      schedule: { every: 10 },
      handler: async () => {
        await new Promise((resolve) => setTimeout(resolve, 2));
        return 'ok';
      },
    });
    const run = worker.run();
    const sums: number[] = [];
    const finished: number[] = [];
    try {
      for (let i = 0; i < 30; i++) {
        running.refresher.invalidate(); // recount done/dead in this very snapshot
        const snapshot = await running.refresher.refresh();
        const count = (rows: Array<{ n: number }>) => rows.reduce((sum, r) => sum + r.n, 0);
        sums.push(count(snapshot.counts.open) + count(snapshot.counts.finished));
        finished.push(count(snapshot.counts.finished));
        if (finished.at(-1) === total) break;
      }
    } finally {
      await worker.stop();
      await run;
    }
    // Tasks moved between snapshots, and no snapshot counted a task twice or missed one.
    expect(new Set(finished).size).toBeGreaterThan(1);
    expect(sums.every((n) => n === total)).toBe(true);
  });

  it('shows held locks with their fence and the leader of each election key', async () => {
    const { locks, console: running } = await open();
    const session = await locks.openSession();
    const lease = await session.tryAcquire('task/42', { value: 'worker-a' });
    const leadership = await new Election(locks, 'svc/reports/leader').campaign(session, {
      value: { id: 'reporter-1', address: 'http://10.0.0.7:8080' },
    });
    const snapshot = await running.refresher.refresh();
    expect(snapshot.locks?.backend).toBe('memory');
    const held = snapshot.locks?.holders.find((h) => h.key === 'task/42');
    const backend = (await locks.getHolder('task/42'))!;
    expect(held).toMatchObject({
      sessionId: session.id,
      fence: lease!.fence,
      value: 'worker-a',
      // The backend's own record, as it reports it.
      acquiredAt: backend.acquiredAt,
      acquiredAtSource: 'server',
      leaseRemainingAtMostMs: null,
    });
    expect(held!.ageMs).toBeGreaterThanOrEqual(0);
    expect(held!.ageMs).toBeLessThanOrEqual(Date.now() - backend.acquiredAt!);
    expect(held!.leaseRemainingMs).toBeGreaterThan(0);
    expect(held!.leaseRemainingMs).toBeLessThanOrEqual(session.ttlMs);
    expect(snapshot.locks).toMatchObject({ holderTimes: true, line: 'listed', waitersError: null });
    expect(held).toMatchObject({ waiters: [], waitersTotal: 0 });
    expect(snapshot.leaders).toEqual([
      {
        key: 'svc/reports/leader',
        leader: expect.objectContaining({ id: 'reporter-1', term: leadership.term, sessionId: session.id }),
        error: null,
      },
    ]);
    expect(snapshot.leaders[0]!.leader!.published).toMatchObject({ address: 'http://10.0.0.7:8080' });
    await leadership.resign();
    await session.destroy();
    const after = await running.refresher.refresh();
    expect(after.leaders[0]!.leader).toBeNull();
    expect(after.locks?.holders).toEqual([]);
  });
});

describe('locks', () => {
  it('lists the waiters of each held key in line order, as the backend reports them', async () => {
    const { locks, console: running } = await open();
    const [a, b, c] = [await locks.openSession(), await locks.openSession(), await locks.openSession()];
    const lease = await a.tryAcquire('task/7');
    const stop = new AbortController();
    const waitB = b.acquire('task/7', { signal: stop.signal }).catch((e: unknown) => e);
    await until(async () => (await locks.waiters('task/7')).length === 1);
    const waitC = c.acquire('task/7', { timeoutMs: 30_000 });
    await until(async () => (await locks.waiters('task/7')).length === 2);
    const backend = await locks.waiters('task/7');
    const row = (await running.refresher.refresh()).locks?.holders.find((h) => h.key === 'task/7');
    expect(row?.waiters).toEqual(
      backend.map((w) => ({
        sessionId: w.sessionId,
        position: w.position,
        since: w.since,
        sinceSource: w.sinceSource,
      })),
    );
    expect(row?.waiters?.map((w) => w.sessionId)).toEqual([b.id, c.id]);
    expect(row?.waitersTotal).toBe(2);
    stop.abort();
    await waitB;
    const after = (await running.refresher.refresh()).locks?.holders.find((h) => h.key === 'task/7');
    expect(after?.waiters?.map((w) => [w.position, w.sessionId])).toEqual([[1, c.id]]);
    await lease!.release();
    await (await waitC).release();
  });

  it('says so when the backend keeps no waiting line or reports no times', async () => {
    const memory = new MemoryLockProvider();
    cleanups.push(() => memory.close());
    // A backend of an older kind: no line, no times (the memory provider's data, without those claims).
    const plain: LockProvider = {
      backend: 'plain',
      capabilities: { ...memory.capabilities, fairQueue: false, holderTimes: false, waiters: false },
      clock: memory.clock,
      openSession: (options) => memory.openSession(options),
      getHolder: (key, options) => memory.getHolder(key, options),
      watch: (key, options) => memory.watch(key, options),
      list: async (prefix) =>
        (await memory.list(prefix)).map(({ key, sessionId, fence, value }) => ({
          key,
          sessionId,
          fence,
          value,
        })),
      close: () => memory.close(),
      [Symbol.asyncDispose]: () => memory.close(),
    };
    const session = await memory.openSession();
    await session.tryAcquire('job/1');
    const view = await new LocksReader(plain, '', []).locks();
    expect(view).toMatchObject({ holderTimes: false, line: 'none' });
    expect(view.holders).toEqual([
      expect.objectContaining({
        key: 'job/1',
        acquiredAt: null,
        ageMs: null,
        leaseRemainingMs: null,
        leaseRemainingAtMostMs: null,
        waiters: null,
      }),
    ]);
  });
});

describe('workers', () => {
  it('shows each worker with what it runs now and what it finished in the last 5 minutes', async () => {
    const { source, console: running } = await open();
    const quick = await source.enqueue(Array.from({ length: 5 }, () => ({ kind: 'quick' })));
    const [slow] = await source.enqueue({ kind: 'slow' });
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started: () => void = () => {};
    const slowStarted = new Promise<void>((resolve) => {
      started = resolve;
    });
    const workerLocks = new MemoryLockProvider({ lockDelayMs: 0 });
    cleanups.push(() => workerLocks.close());
    const worker = new Worker({
      id: 'worker-one',
      locks: workerLocks,
      source,
      concurrency: 2,
      schedule: { every: 20 },
      handler: async ({ task }) => {
        if (task.kind === 'slow') {
          started();
          await held;
        }
        return 'ok';
      },
    });
    const run = worker.run();
    try {
      await slowStarted;
      while ((await Promise.all(quick.map((id) => source.get(id)))).some((t) => t?.status !== 'done')) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const snapshot = await running.refresher.refresh();
      expect(snapshot.workers).toEqual([
        expect.objectContaining({ id: 'worker-one', running: 1, tasks: [slow], done: 5, dead: 0 }),
      ]);
      expect(snapshot.workers[0]!.runningSince).not.toBeNull();
    } finally {
      release();
      await worker.stop();
      await run;
    }
    const after = await running.refresher.refresh();
    expect(after.workers).toEqual([
      expect.objectContaining({ id: 'worker-one', state: 'stopped', running: 0, tasks: [], done: 6 }),
    ]);
  });

  it('shows heartbeats as the workers table holds them: an idle worker alive, a silent one, a stopped one', async () => {
    const { source, admin, schema, console: running } = await open();
    const workerLocks = new MemoryLockProvider({ lockDelayMs: 0 });
    cleanups.push(() => workerLocks.close());
    const start = (id: string) => {
      const worker = new Worker({
        id,
        locks: workerLocks,
        source,
        schedule: { every: 60_000 },
        heartbeatEveryMs: 60_000,
        handler: () => 'ok',
      });
      return { worker, run: worker.run() };
    };
    const idle = start('idle-one');
    const gone = start('stopped-one');
    const silent = start('silent-one');
    const table = `"${schema}".workers`;
    try {
      const beats = async () => (await admin.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n;
      while ((await beats()) < 3) await new Promise((resolve) => setTimeout(resolve, 20));
      await gone.worker.stop();
      await gone.run;
      // A worker whose beats stopped arriving (crashed, paused): its latest beat is 3 intervals and a bit old.
      await admin.query(
        `UPDATE ${table} SET beat_at = now() - interval '181 seconds', started_at = now() - interval '1 hour'
          WHERE worker_id = 'silent-one'`,
      );
      const snapshot = await running.refresher.refresh();
      const { rows } = await admin.query(
        `SELECT worker_id, state, host, pid, mode, locks, started_at, beat_at, stopped_at FROM ${table}`,
      );
      const shown = new Map(snapshot.workers.map((w) => [w.id, w]));
      expect([...shown.keys()].sort()).toEqual(['idle-one', 'silent-one', 'stopped-one']);
      for (const row of rows) {
        const w = shown.get(row.worker_id)!;
        expect(w).toMatchObject({
          host: row.host,
          pid: row.pid,
          mode: row.mode,
          locks: row.locks,
          startedAt: row.started_at.toISOString(),
          lastBeatAt: row.beat_at.toISOString(),
          stoppedAt: row.stopped_at?.toISOString() ?? null,
          intervalMs: 60_000,
          running: 0,
          tasks: [],
        });
      }
      expect(shown.get('idle-one')).toMatchObject({ state: 'alive', mode: 'task', locks: 'memory' });
      expect(shown.get('stopped-one')!.state).toBe('stopped');
      expect(shown.get('stopped-one')!.stoppedAt).not.toBeNull();
      expect(shown.get('silent-one')!.state).toBe('silent');
      expect(shown.get('silent-one')!.beatAgeMs).toBeGreaterThanOrEqual(181_000);
      // Alive and silent (state running) before stopped.
      expect(snapshot.workers.at(-1)!.id).toBe('stopped-one');
    } finally {
      for (const { worker, run } of [idle, silent]) {
        await worker.stop();
        await run;
      }
    }
  });

  it('rates come from the counters of the last two beats, over the time between them (database clock)', async () => {
    const { source, admin, schema, console: running } = await open();
    const zero = { claimed: 0, completed: 0, failed: 0, dead: 0, leaseLost: 0, staleWrites: 0, errors: 0 };
    const beat = {
      workerId: 'rated',
      instance: 'run-1',
      state: 'running' as const,
      host: 'h1',
      pid: 7,
      uptimeMs: 0,
      mode: 'bucket' as const,
      locks: 'etcd',
      intervalMs: 10_000,
      running: 0,
      taskIds: [],
      counters: zero,
    };
    await source.heartbeat(beat);
    await source.heartbeat({
      ...beat,
      counters: { ...zero, claimed: 50, completed: 45, failed: 4, dead: 1 },
    });
    let [w] = (await running.refresher.refresh()).workers;
    expect(w!.rates).not.toBeNull();
    // Make the beats exactly 30 s apart, as a database clock would have them at a 30 s interval.
    await admin.query(`UPDATE "${schema}".workers SET prev_beat_at = beat_at - interval '30 seconds'`);
    [w] = (await running.refresher.refresh()).workers;
    expect(w).toMatchObject({
      state: 'alive',
      mode: 'bucket',
      locks: 'etcd',
      rates: { done: 90, failed: 8, dead: 2 },
      counters: { completed: 45, failed: 4, dead: 1, leaseLost: 0 },
    });
    // A restart under the same id has one beat: no rate yet.
    await source.heartbeat({ ...beat, instance: 'run-2' });
    [w] = (await running.refresher.refresh()).workers;
    expect(w!.rates).toBeNull();
  });

  it('workers without a heartbeat (older versions, or heartbeat off) still show from the tasks table', async () => {
    const { source, admin, schema, console: running } = await open();
    const [id] = await source.enqueue({ kind: 'legacy' });
    await admin.query(
      `UPDATE "${schema}".tasks SET status = 'running', worker_id = 'old-version', claimed_at = now(), attempts = 1
        WHERE id = $1`,
      [id],
    );
    let snapshot = await running.refresher.refresh();
    expect(snapshot.workers).toEqual([
      expect.objectContaining({ id: 'old-version', state: 'unknown', running: 1, tasks: [id], host: null }),
    ]);
    // A schema an older baton created and nobody migrated: no workers table, the tasks table still answers.
    await admin.query(`DROP TABLE "${schema}".workers`);
    snapshot = await running.refresher.refresh();
    expect(snapshot.workers.map((w) => [w.id, w.state])).toEqual([['old-version', 'unknown']]);
  });
});

describe('task list', () => {
  it('pages by id without gaps or repeats, and refuses bad input with a 400 naming the field', async () => {
    const { source, url } = await open();
    const ids = await source.enqueue(
      Array.from({ length: 25 }, (_, n) => ({ kind: n % 2 ? 'odd' : 'even' })),
    );
    const seen: string[] = [];
    let before: string | null = null;
    for (let page = 0; page < 10; page++) {
      const query: URLSearchParams = new URLSearchParams({
        limit: '4',
        kind: 'odd',
        ...(before ? { before } : {}),
      });
      const { status, body }: { status: number; body: TaskPage } = await json<TaskPage>(
        url(`/api/tasks?${query}`),
      );
      expect(status).toBe(200);
      expect(body.tasks.length).toBeLessThanOrEqual(4);
      seen.push(...body.tasks.map((t) => t.id));
      before = body.next;
      if (before === null) break;
    }
    expect(seen).toEqual(ids.filter((_, n) => n % 2).reverse());

    const bad = async (query: string) => json<{ field: string; message: string }>(url(`/api/tasks${query}`));
    expect((await bad(`?limit=${LIMITS.pageSize + 1}`)).body.field).toBe('limit');
    expect((await bad('?limit=0')).status).toBe(400);
    expect((await bad('?status=zombie')).body.field).toBe('status');
    expect((await bad('?before=1;DROP TABLE x')).body.field).toBe('before');
    expect((await bad('?sort=evil')).body).toMatchObject({ field: 'sort' });
    const badId = await json<{ field: string }>(url('/api/tasks/0x10'));
    expect(badId).toMatchObject({ status: 400, body: { field: 'id' } });
    expect((await json(url('/api/tasks/99999999999'))).status).toBe(404);
  });

  it('walks at most LIMITS.scanRows rows per request and hands back where to go on', async () => {
    const { admin, schema, url } = await open();
    const total = LIMITS.scanRows + 500;
    await admin.query(`INSERT INTO "${schema}".tasks (kind) SELECT 'bulk' FROM generate_series(1, $1)`, [
      total,
    ]);
    await admin.query(`INSERT INTO "${schema}".tasks (kind) VALUES ('rare')`);
    await admin.query(
      `UPDATE "${schema}".tasks SET kind = 'rare' WHERE id = (SELECT min(id) FROM "${schema}".tasks)`,
    );
    const first = await json<TaskPage>(url('/api/tasks?kind=rare&limit=5'));
    // The newest row matches; the walk stops at the bound before reaching the oldest one.
    expect(first.body.tasks).toHaveLength(1);
    expect(first.body.scanned).toBe(LIMITS.scanRows);
    expect(first.body.next).not.toBeNull();
    const second = await json<TaskPage>(url(`/api/tasks?kind=rare&limit=5&before=${first.body.next}`));
    expect(second.body.tasks).toHaveLength(1);
    expect(second.body.next).toBeNull();
    expect(second.body.scanned).toBeLessThanOrEqual(LIMITS.scanRows);
  });

  it('finds a task by id or by idempotency key', async () => {
    const { source, url } = await open();
    const [id] = await source.enqueue({ kind: 'k', id: 'invoice-7' });
    expect((await json<TaskPage>(url('/api/tasks?q=invoice-7'))).body.tasks.map((t) => t.id)).toEqual([id]);
    expect((await json<TaskPage>(url(`/api/tasks?q=${id}`))).body.tasks.map((t) => t.key)).toEqual([
      'invoice-7',
    ]);
    expect((await json<TaskPage>(url('/api/tasks?q=nothing'))).body.tasks).toEqual([]);
  });
});

describe('safety', () => {
  it('returns an HTML or script payload and error as JSON data, under a strict CSP', async () => {
    const { source, admin, schema, url } = await open();
    const evil = { html: '<img src=x onerror=alert(1)>', script: '<script>alert(1)</script>' };
    const [id] = await source.enqueue({ kind: '<b>kind</b>', payload: evil });
    await admin.query(`UPDATE "${schema}".tasks SET last_error = $2 WHERE id = $1`, [id, evil.html]);
    const { status, body, headers } = await json<Task>(url(`/api/tasks/${id}`));
    expect(status).toBe(200);
    expect(headers.get('content-type')).toMatch(/^application\/json/);
    expect(headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
    expect(headers.get('x-content-type-options')).toBe('nosniff');
    expect(body.payload).toEqual(evil);
    expect(body.kind).toBe('<b>kind</b>');
    expect(body.lastError).toBe(evil.html);
    const page = await fetch(url('/'));
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await page.text();
    // Every script comes from a file the policy allows; none is inline.
    expect(html.match(/<script\b[^>]*>/g)?.every((tag) => / src="\/[^"]+"/.test(tag))).toBe(true);
    const script = await (await fetch(url('/console.js'))).text();
    expect(script).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    const chart = await fetch(url('/vendor/uPlot.iife.min.js'));
    expect(chart.status).toBe(200);
    expect(await chart.text()).toMatch(/uPlot/);
  });

  it('is read-only without a token: a retry is refused and logged', async () => {
    const { source, admin, schema, url, actions } = await open();
    const [id] = await source.enqueue({ kind: 'k' });
    await settle(admin, schema, [id!], 'dead');
    const response = await json<{ error: string }>(url(`/api/tasks/${id}/retry`), {
      method: 'POST',
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    expect(response).toMatchObject({ status: 403, body: { error: 'read-only' } });
    expect((await source.get(id!))?.status).toBe('dead');
    expect(actions).toEqual([
      expect.objectContaining({ action: 'retry', taskId: id, outcome: 'denied', reason: 'read-only' }),
    ]);
  });

  it('refuses a retry without the token (401) or with a wrong one (403), and logs each', async () => {
    const { source, admin, schema, url, actions } = await open({ token: TOKEN });
    const [id] = await source.enqueue({ kind: 'k' });
    await settle(admin, schema, [id!], 'dead');
    const retry = (headers: Record<string, string>) =>
      fetch(url(`/api/tasks/${id}/retry`), { method: 'POST', headers });
    expect((await retry({})).status).toBe(401);
    expect((await retry({ Authorization: TOKEN })).status).toBe(401);
    expect((await retry({ Authorization: `Bearer ${TOKEN}x` })).status).toBe(403);
    expect((await retry({ Authorization: `Bearer ${TOKEN.slice(0, -1)}` })).status).toBe(403);
    expect((await source.get(id!))?.status).toBe('dead');
    expect(actions.map((a) => [a.outcome, a.reason])).toEqual([
      ['denied', 'missing'],
      ['denied', 'missing'],
      ['denied', 'wrong'],
      ['denied', 'wrong'],
    ]);
    const pending = await source.enqueue({ kind: 'k' });
    const conflict = await fetch(url(`/api/tasks/${pending[0]}/retry`), {
      method: 'POST',
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    expect(conflict.status).toBe(409);
    expect(actions.at(-1)).toMatchObject({ outcome: 'not-retryable', taskId: pending[0] });
  });

  it('retries a dead task with the token; a real Worker then runs it exactly once', async () => {
    const { source, url, actions, console: running } = await open({ token: TOKEN });
    const [id] = await source.enqueue({ kind: 'flaky', maxAttempts: 1, payload: { n: 1 } });
    const workerLocks = new MemoryLockProvider({ lockDelayMs: 0 });
    cleanups.push(() => workerLocks.close());
    const dying = new Worker({
      locks: workerLocks,
      source,
      schedule: { once: true },
      handler: () => {
        throw new Error('first attempt fails');
      },
    });
    await dying.run();
    expect(await source.get(id!)).toMatchObject({ status: 'dead', lastError: 'first attempt fails' });
    const fenceBefore = (await source.get(id!))!.fence;
    expect((await running.refresher.refresh()).problems.dead.map((t) => t.id)).toEqual([id]);

    const response = await json<{ retried: boolean }>(url(`/api/tasks/${id}/retry`), {
      method: 'POST',
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    expect(response).toMatchObject({ status: 200, body: { retried: true } });
    expect(actions).toEqual([expect.objectContaining({ action: 'retry', taskId: id, outcome: 'retried' })]);
    // Due now, attempts reset, the fence kept (stale writes of the dead attempt stay rejected).
    expect(await source.get(id!)).toMatchObject({ status: 'pending', attempts: 0, fence: fenceBefore });
    expect((await running.refresher.current()).problems.dead).toEqual([]);

    const runs: string[] = [];
    const workers = [1, 2].map(
      () =>
        new Worker({
          locks: workerLocks,
          source,
          schedule: { once: true },
          handler: ({ task }) => {
            runs.push(task.id);
            return 'ok';
          },
        }),
    );
    await Promise.all(workers.map((w) => w.run()));
    expect(runs).toEqual([id]);
    expect(await source.get(id!)).toMatchObject({ status: 'done', result: 'ok', attempts: 1 });
  });
});

describe('live updates', () => {
  it('runs one refresh loop for all open pages: its reads do not grow with the number of pages', async () => {
    const { console: running, url } = await open({ refreshMs: 250 });
    const idle = running.refresher.refreshes;
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(running.refresher.refreshes).toBe(idle);

    const pages = 8;
    const controllers = Array.from({ length: pages }, () => new AbortController());
    const received = Array.from({ length: pages }, () => 0);
    const decoder = new TextDecoder();
    const readers = controllers.map(async (controller, i) => {
      const response = await fetch(url('/api/events'), { signal: controller.signal });
      expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const reader = response.body!.getReader();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          received[i]! += (decoder.decode(value).match(/^event: snapshot$/gm) ?? []).length;
        }
      } catch {
        // aborted
      }
    });
    const started = performance.now();
    const before = running.refresher.refreshes;
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const elapsed = performance.now() - started;
    const reads = running.refresher.refreshes - before;
    for (const c of controllers) c.abort();
    await Promise.all(readers);
    // One read per interval (plus the first, right away), shared by the eight pages.
    expect(reads).toBeGreaterThanOrEqual(2);
    expect(reads).toBeLessThanOrEqual(Math.ceil(elapsed / 250) + 1);
    for (const n of received) expect(n).toBeGreaterThanOrEqual(2);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(running.refresher.listeners).toBe(0);
  });
});

async function until(condition: () => Promise<boolean>): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 20));
}
