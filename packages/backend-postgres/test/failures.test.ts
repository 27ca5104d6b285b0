import { randomBytes } from 'node:crypto';
import { type Clock, systemClock } from '@baton/core';
import { describe, expect, it } from 'vitest';
import { SWEEP_BATCH } from '../src/index.js';
import { adminErrors, lockDatabase, makeProvider } from './harness.js';

const database = lockDatabase();
const TTL_MS = 1_500;

async function provider(label: string, extra: Parameters<typeof makeProvider>[2] = {}) {
  const db = database.db();
  const schema = await db.newSchema(label);
  const errors: Array<{ error: unknown; context: string }> = [];
  const made = makeProvider(
    db.connectionString,
    { schema, ttlMs: TTL_MS, lockDelayMs: 0, pollIntervalMs: 200 },
    { onError: (error, context) => errors.push({ error, context }), ...extra },
  );
  await made.migrate();
  return { provider: made, schema, errors };
}

async function rows(schema: string): Promise<{ sessions: number; locks: number }> {
  const { rows: found } = await database.admin().query(
    `SELECT (SELECT count(*) FROM "${schema}".sessions)::int AS sessions,
              (SELECT count(*) FROM "${schema}".locks)::int AS locks`,
  );
  return found[0] as { sessions: number; locks: number };
}

function key(label: string): string {
  return `${label}/${randomBytes(4).toString('hex')}`;
}

/**
 * Releases `lease`. Right after the server terminated connections, the pooled one the release gets may be
 * dying: that is reported as UNAVAILABLE (never as "not held"), and the session's next renewal finds the
 * row still naming it and frees it.
 */
async function releaseOrReport(lease: { release(): Promise<boolean> } | null | undefined): Promise<void> {
  try {
    expect(await lease?.release()).toBe(true);
  } catch (error) {
    expect(error).toMatchObject({ code: 'UNAVAILABLE' });
  }
}

async function eventually(check: () => Promise<boolean>, withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not so within ${withinMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('postgres locks: no key left behind', () => {
  it('leaves no lock row after N tasks, and the sweep bounds what crashed sessions leave', async () => {
    const { provider: p, schema } = await provider('locks_sweep');
    try {
      const worker = await p.openSession();
      for (let i = 0; i < 60; i++) {
        await worker.withLock(`task/${i}`, () => undefined);
      }
      expect(await rows(schema)).toEqual({ sessions: 1, locks: 0 });

      // Crashed holders and lockAtLeastFor windows leave rows until their time is over; then the sweep
      // takes them, whatever N was.
      for (let i = 0; i < 5; i++) {
        const crashed = await p.openSession({ ttlMs: 1_000 });
        await crashed.tryAcquire(`crash/${i}`);
        crashed.abandon();
      }
      const early = await worker.tryAcquire('early', { lockAtLeastForMs: 1_000 });
      expect(await early?.release()).toBe(true);
      expect((await rows(schema)).locks).toBeGreaterThan(0);
      await new Promise((resolve) => setTimeout(resolve, 1_300));
      // The renewals' own sweep may have run already: what matters is what is left.
      await p.sweep();
      expect(await rows(schema)).toEqual({ sessions: 1, locks: 0 });
      expect(SWEEP_BATCH).toBeGreaterThan(0);
    } finally {
      await p.close();
    }
    expect(await rows(schema)).toEqual({ sessions: 0, locks: 0 });
  });

  it('sweeps by itself after renewals', async () => {
    const { provider: p, schema } = await provider('locks_autosweep');
    try {
      const crashed = await p.openSession({ ttlMs: 300 });
      await crashed.tryAcquire('left/behind');
      crashed.abandon();
      await p.openSession();
      await eventually(async () => (await rows(schema)).sessions === 1, 10_000);
      expect((await rows(schema)).locks).toBe(0);
    } finally {
      await p.close();
    }
  });

  it('frees a row that names the session but no lease of it (an answer lost in transport)', async () => {
    const { provider: p, schema } = await provider('locks_orphan');
    try {
      const session = await p.openSession();
      await database.admin().query(
        `INSERT INTO "${schema}".locks (key, session_id, fence, min_until)
           VALUES ('orphan', $1, nextval('"${schema}".fence_seq'), clock_timestamp())`,
        [session.id],
      );
      await eventually(async () => (await rows(schema)).locks === 0, 10_000);
      expect(await session.tryAcquire('orphan')).not.toBeNull();
    } finally {
      await p.close();
    }
  });
});

describe('postgres locks: bounds', () => {
  it('takes the longest lockAtLeastFor the contract allows (365 days)', async () => {
    const { provider: p } = await provider('locks_bounds');
    try {
      const session = await p.openSession();
      const lease = await session.tryAcquire(key('long'), { lockAtLeastForMs: 365 * 24 * 3_600_000 });
      expect(lease?.fence).toBeGreaterThan(0);
      expect(await lease?.release()).toBe(true);
      expect(await (await p.openSession()).tryAcquire(lease?.key ?? '')).toBeNull();
    } finally {
      await p.close();
    }
  });
});

describe('postgres locks: clocks', () => {
  it("judges expiry by the database's clock only: a client clock an hour ahead frees nothing", async () => {
    const ahead: Clock = {
      ...systemClock,
      monotonicNow: () => systemClock.monotonicNow() + 3_600_000,
      wallNow: () => systemClock.wallNow() + 3_600_000,
    };
    const { provider: p, schema } = await provider('locks_clock');
    const skewed = makeProvider(database.db().connectionString, { schema, ttlMs: TTL_MS }, { clock: ahead });
    try {
      const holder = await p.openSession();
      const k = key('clock');
      const lease = await holder.tryAcquire(k);
      const other = await skewed.openSession();
      expect(await other.tryAcquire(k)).toBeNull();
      expect((await skewed.getHolder(k))?.fence).toBe(lease?.fence);
    } finally {
      await skewed.close();
      await p.close();
    }
  });
});

describe('postgres locks: the server terminates our connections', () => {
  it('keeps or reports the session, and fences still rise', async () => {
    const { provider: p } = await provider('locks_kill');
    try {
      const session = await p.openSession();
      const k = key('kill');
      const first = await session.tryAcquire(k);
      expect(first).not.toBeNull();
      await database.db().dropConnections();
      await eventually(async () => adminErrors.length > 0 || database.db().kind === 'pglite', 5_000);
      for (const error of adminErrors.splice(0)) {
        expect(error.message).toMatch(/terminat|Connection/i);
      }
      // The pool reconnects: the next renewal either lands (the lease survives) or the session is
      // reported lost; never a silent half-state.
      await new Promise((resolve) => setTimeout(resolve, TTL_MS));
      if (session.signal.aborted) {
        expect(first?.signal.aborted).toBe(true);
      } else {
        expect(first?.held).toBe(true);
        expect((await p.getHolder(k))?.fence).toBe(first?.fence);
        await releaseOrReport(first);
      }
      const next = await (await p.openSession()).acquire(k, { timeoutMs: 10_000 });
      expect(next.fence).toBeGreaterThan(first?.fence ?? 0);
    } finally {
      await p.close();
    }
  });

  it('reports a lost LISTEN connection and keeps watching', async () => {
    const { provider: p, errors } = await provider('locks_listen');
    const controller = new AbortController();
    try {
      const k = key('listen');
      const seen: Array<number | null> = [];
      const watching = (async () => {
        for await (const holder of p.watch(k, { signal: controller.signal, pollIntervalMs: 10_000 })) {
          seen.push(holder?.fence ?? null);
        }
      })();
      await eventually(async () => seen.length === 1, 10_000);
      const session = await p.openSession();
      const lease = await session.tryAcquire(k);
      // A poll interval of 10 s: seeing this at once means the NOTIFY arrived.
      await eventually(async () => seen.at(-1) === lease?.fence, 5_000);

      await database.db().dropConnections();
      await eventually(async () => errors.some((e) => e.context === 'listen for lock notifications'), 10_000);
      const lost = errors.find((e) => e.context === 'listen for lock notifications')?.error;
      expect(lost).toMatchObject({ code: 'UNAVAILABLE' });

      // After a reconnect every watcher re-reads, and NOTIFY works again: the release is seen well before
      // the next poll.
      await releaseOrReport(lease);
      await eventually(async () => seen.at(-1) === null, 8_000);
      controller.abort();
      await watching;
    } finally {
      controller.abort();
      await p.close();
    }
  });
});
