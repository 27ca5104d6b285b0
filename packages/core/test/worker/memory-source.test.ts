import { describe, expect, it } from 'vitest';
import { ManualClock, MemoryTaskSource, type Task } from '../../src/index.js';

async function collect(iterable: AsyncIterable<Task>): Promise<string[]> {
  const ids: string[] = [];
  for await (const task of iterable) ids.push(task.id);
  return ids;
}

function fixture(options: ConstructorParameters<typeof MemoryTaskSource>[0] = {}) {
  const clock = new ManualClock();
  const source = new MemoryTaskSource({ clock, retryDelayMs: (n) => n * 1_000, ...options });
  return { clock, source };
}

describe('MemoryTaskSource', () => {
  it('enqueues with JSON payloads, default attempts, and idempotency keys', async () => {
    const { clock, source } = fixture({ defaultMaxAttempts: 3 });
    const ids = await source.enqueue([
      { kind: 'a', payload: { at: new Date(0), skip: undefined, n: 1 } },
      { kind: 'b', id: 'key-1', maxAttempts: 7 },
      { kind: 'c', id: 'key-1' },
    ]);
    expect(ids).toEqual(['1', 'key-1', 'key-1']);
    expect(await source.enqueue({ kind: 'again', id: 'key-1' })).toEqual(['key-1']);
    expect(source.size).toBe(2);
    const a = (await source.get('1'))!;
    expect(a).toMatchObject({
      kind: 'a',
      payload: { at: '1970-01-01T00:00:00.000Z', n: 1 },
      status: 'pending',
      attempts: 0,
      maxAttempts: 3,
      fence: null,
      workerId: null,
      result: null,
      lastError: null,
    });
    expect(a.runAt.getTime()).toBe(clock.wallNow());
    expect(Object.isFrozen(a)).toBe(true);
    expect(await source.get('key-1')).toMatchObject({ kind: 'b', maxAttempts: 7, payload: null });
    expect(await source.get('nope')).toBeNull();
  });

  it('rejects tasks it could never store', async () => {
    const { source } = fixture();
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    await expect(source.enqueue({ kind: '' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(source.enqueue({ kind: 'k', maxAttempts: 0 })).rejects.toThrow(/maxAttempts/);
    await expect(source.enqueue({ kind: 'k', payload: circular })).rejects.toThrow(/JSON/);
    await expect(source.enqueue({ kind: 'k', runAt: new Date(Number.NaN) })).rejects.toThrow(/runAt/);
    // A batch with one bad task stores nothing.
    await expect(source.enqueue([{ kind: 'ok' }, { kind: '' }])).rejects.toThrow();
    expect(source.size).toBe(0);
  });

  it('claims only a runnable task with a newer fence, and counts attempts', async () => {
    const { clock, source } = fixture();
    const [id, later] = await source.enqueue([
      { kind: 'k' },
      { kind: 'k', runAt: new Date(Date.UTC(2026, 0, 2)) },
    ]);
    expect(await source.claim('missing', 5, 'w')).toEqual({ claimed: false, reason: 'missing' });
    expect(await source.claim(later!, 5, 'w')).toEqual({ claimed: false, reason: 'not-runnable' });
    const first = await source.claim(id!, 5, 'w1');
    expect(first).toMatchObject({
      claimed: true,
      task: { status: 'running', fence: 5, workerId: 'w1', attempts: 1 },
    });
    expect(await source.claim(id!, 5, 'w2')).toEqual({ claimed: false, reason: 'stale' });
    expect(await source.claim(id!, 4, 'w2')).toEqual({ claimed: false, reason: 'stale' });
    // A newer fence takes a running task over (its lock proves the old lease ended); the old fence is out.
    expect(await source.claim(id!, 6, 'w2')).toMatchObject({
      claimed: true,
      task: { attempts: 2, fence: 6 },
    });
    expect(await source.complete(id!, 5, 'r')).toEqual({ applied: false, reason: 'stale' });
    expect(await source.complete(id!, 6, 'r')).toEqual({ applied: true });
    expect(await source.claim(id!, 9, 'w2')).toEqual({ claimed: false, reason: 'not-runnable' });
    await clock.advance(0);
    await expect(source.claim(id!, -1, 'w')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('reclaims a running task after reclaimAfterMs; the old fence can no longer write', async () => {
    const { clock, source } = fixture({ reclaimAfterMs: 10_000 });
    const [id] = await source.enqueue({ kind: 'k' });
    await source.claim(id!, 1, 'crashed');
    expect(await collect(source.due())).toEqual([]);
    await clock.advance(9_999);
    expect(await collect(source.due())).toEqual([]);
    await clock.advance(1);
    expect(await collect(source.due())).toEqual([id]);
    expect(await source.claim(id!, 2, 'rescuer')).toMatchObject({
      claimed: true,
      task: { attempts: 2, fence: 2 },
    });
    expect(await source.complete(id!, 1, 'late')).toEqual({ applied: false, reason: 'stale' });
    expect(await source.fail(id!, 1, { message: 'late' })).toEqual({ applied: false, reason: 'stale' });
    expect(await source.complete(id!, 2, 'rescued')).toEqual({ applied: true });
    expect(await source.complete(id!, 2, 'twice')).toEqual({ applied: false, reason: 'stale' });
    expect(await source.get(id!)).toMatchObject({ status: 'done', result: 'rescued', workerId: 'rescuer' });
  });

  it('buries a running task whose worker died in its final attempt instead of running it again', async () => {
    const { source } = fixture();
    const [id] = await source.enqueue({ kind: 'k', maxAttempts: 2 });
    await source.claim(id!, 1, 'w1');
    await source.claim(id!, 2, 'w2'); // w1 vanished; w2 takes over for the last attempt and vanishes too
    expect(await source.claim(id!, 3, 'w3')).toEqual({ claimed: false, reason: 'not-runnable' });
    expect(await source.get(id!)).toMatchObject({
      status: 'dead',
      attempts: 2,
      fence: 3,
      lastError: expect.stringMatching(/^abandoned: no outcome was reported for attempt 2 of 2/),
    });
    expect(await source.complete(id!, 2, 'late')).toEqual({ applied: false, reason: 'stale' });
  });

  it('fails with backoff until maxAttempts, then dead; a non-retryable failure is dead at once', async () => {
    const { clock, source } = fixture();
    const [id, fatal] = await source.enqueue([
      { kind: 'k', maxAttempts: 2 },
      { kind: 'k', maxAttempts: 5 },
    ]);
    await source.claim(id!, 1, 'w');
    const first = await source.fail(id!, 1, { message: 'e1' });
    expect(first).toEqual({ applied: true, status: 'failed', nextRunAt: new Date(clock.wallNow() + 1_000) });
    expect(await source.claim(id!, 2, 'w')).toEqual({ claimed: false, reason: 'not-runnable' });
    expect(await collect(source.due())).toEqual([fatal]);
    await clock.advance(1_000);
    expect(await collect(source.due())).toEqual([id, fatal]);
    await source.claim(id!, 2, 'w');
    expect(await source.fail(id!, 2, { message: 'e2' })).toEqual({ applied: true, status: 'dead' });
    expect(await source.get(id!)).toMatchObject({ status: 'dead', attempts: 2, lastError: 'e2' });

    await source.claim(fatal!, 3, 'w');
    expect(await source.fail(fatal!, 3, { message: 'bad payload', retryable: false })).toEqual({
      applied: true,
      status: 'dead',
    });
    expect(source.counts()).toEqual({ pending: 0, running: 0, done: 0, failed: 0, dead: 2 });
  });

  it('streams due tasks from the start fraction, wrapping around, page by page', async () => {
    const { source } = fixture({ pageSize: 3 });
    const ids = await source.enqueue(
      Array.from({ length: 10 }, (_, i) => ({ kind: i % 2 ? 'odd' : 'even' })),
    );
    expect(await collect(source.due())).toEqual(ids);
    expect(await collect(source.due({ start: 0.5 }))).toEqual([...ids.slice(5), ...ids.slice(0, 5)]);
    expect(await collect(source.due({ start: 0.95, pageSize: 1 }))).toEqual([ids[9], ...ids.slice(0, 9)]);
    expect(await collect(source.due({ kinds: ['odd'] }))).toEqual(ids.filter((_, i) => i % 2));
    // Only due tasks count for the span: with the first half done, start 0.5 is in the middle of the rest.
    for (const id of ids.slice(0, 6)) {
      await source.claim(id, 1, 'w');
      await source.complete(id, 1);
    }
    expect(await collect(source.due({ start: 0.5 }))).toEqual([ids[8], ids[9], ids[6], ids[7]]);
    await expect(collect(source.due({ start: 1 }))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('re-reads each page: tasks finished meanwhile disappear, none is listed twice', async () => {
    const { source } = fixture({ pageSize: 2 });
    const ids = await source.enqueue(Array.from({ length: 6 }, () => ({ kind: 'k' })));
    const seen: string[] = [];
    for await (const task of source.due({ start: 0.5 })) {
      seen.push(task.id);
      if (seen.length === 1) {
        // Someone else finishes a task of the next page, and a new task arrives.
        await source.claim(ids[5]!, 1, 'other');
        await source.complete(ids[5]!, 1);
        await source.enqueue({ kind: 'k', id: 'new' });
      }
    }
    expect(seen).toEqual([ids[3], ids[4], 'new', ids[0], ids[1], ids[2]]);
  });

  it('stops streaming when the signal aborts', async () => {
    const { source } = fixture({ pageSize: 1 });
    await source.enqueue(Array.from({ length: 5 }, () => ({ kind: 'k' })));
    const controller = new AbortController();
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const task of source.due({ signal: controller.signal })) {
          seen.push(task.id);
          controller.abort();
        }
      })(),
    ).rejects.toMatchObject({ code: 'ABORTED' });
    expect(seen).toHaveLength(1);
  });

  it('injects transport faults before or after a write', async () => {
    const { source } = fixture();
    const [id] = await source.enqueue({ kind: 'k' });
    source.failNext(1, { operations: ['claim'] });
    await expect(source.get(id!)).resolves.not.toBeNull(); // other operations are unaffected
    await expect(source.claim(id!, 1, 'w')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(await source.get(id!)).toMatchObject({ status: 'pending', attempts: 0 });
    await source.claim(id!, 1, 'w');
    source.failNext(1, { operations: ['complete'], when: 'after' });
    await expect(source.complete(id!, 1, 'r')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(await source.get(id!)).toMatchObject({ status: 'done', result: 'r' }); // applied, reply lost
    source.failNext(2);
    await expect(collect(source.due())).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(source.enqueue({ kind: 'k' })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(source.size).toBe(1);
  });

  it('refuses every operation after close()', async () => {
    const { source } = fixture();
    await source.close();
    await source.close();
    await expect(source.enqueue({ kind: 'k' })).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(source.get('1')).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(collect(source.due())).rejects.toMatchObject({ code: 'CLOSED' });
  });
});
