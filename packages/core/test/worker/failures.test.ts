import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { invalidTask, MemoryTaskSource, parsePayload, UnavailableError, Worker } from '../../src/index.js';
import { memoryLocks, nextEvent, record, until } from './helpers.js';

function setup(sourceOptions: ConstructorParameters<typeof MemoryTaskSource>[0] = {}) {
  const { store, provider } = memoryLocks();
  const source = new MemoryTaskSource({ retryDelayMs: () => 0, ...sourceOptions });
  return { store, provider, source };
}

describe('Worker: handler failures', () => {
  it('retries a throwing handler until maxAttempts, then the task is dead with the error kept', async () => {
    const { provider, source } = setup();
    const [id] = await source.enqueue({ kind: 'flaky', maxAttempts: 3 });
    let calls = 0;
    const worker = new Worker({
      locks: provider(),
      source,
      schedule: { every: 10 },
      handler: () => {
        calls++;
        throw new Error(`boom ${calls}`);
      },
    });
    const failed = record(worker, 'task-failed');
    const dead = nextEvent(worker, 'task-dead');
    const run = worker.run();
    const deadEvent = await dead;
    await worker.stop();
    await run;

    expect(calls).toBe(3);
    expect(failed.map((e) => e.task.attempts)).toEqual([1, 2]);
    expect(failed.every((e) => e.nextRunAt instanceof Date)).toBe(true);
    expect(deadEvent.task.attempts).toBe(3);
    expect((deadEvent.error as Error).message).toBe('boom 3');
    expect(await source.get(id!)).toMatchObject({ status: 'dead', attempts: 3, lastError: 'boom 3' });
    expect(worker.stats()).toMatchObject({ claimed: 3, failed: 2, dead: 1, completed: 0 });
  });

  it('aborts a handler that runs past its timeout, fails the attempt and retries the task', async () => {
    const { store, provider, source } = setup();
    const [id] = await source.enqueue({ kind: 'slow' });
    const reasons: unknown[] = [];
    const worker = new Worker({
      locks: provider(),
      source,
      schedule: { every: 10 },
      handlerTimeoutMs: 80,
      handler: async ({ task, signal }) => {
        if (task.attempts > 1) return 'fast this time';
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
        reasons.push(signal.reason);
        throw new Error('stopped because the signal aborted');
      },
    });
    const failed = record(worker, 'task-failed');
    const completed = nextEvent(worker, 'task-completed');
    const run = worker.run();
    await completed;
    await worker.stop();
    await run;

    expect((reasons[0] as { code?: string }).code).toBe('TIMEOUT');
    expect(failed).toHaveLength(1);
    expect((failed[0]!.error as { code?: string }).code).toBe('TIMEOUT');
    expect(await source.get(id!)).toMatchObject({
      status: 'done',
      attempts: 2,
      result: 'fast this time',
      lastError: expect.stringContaining('TIMEOUT'),
    });
    expect(worker.stats()).toMatchObject({
      handlerTimeouts: 1,
      abandonedHandlers: 0,
      failed: 1,
      completed: 1,
    });
    expect(store.list()).toEqual([]);
  });

  it('does not wait forever for a handler that ignores its aborted signal', async () => {
    const { store, provider, source } = setup();
    const [id] = await source.enqueue({ kind: 'stuck' });
    let late: Promise<void> | undefined;
    const worker = new Worker({
      locks: provider(),
      source,
      schedule: { every: 10 },
      handlerTimeoutMs: 50,
      abandonAfterMs: 50,
      handler: ({ task }) => {
        if (task.attempts > 1) return 'ok';
        late = new Promise<void>((resolve) => setTimeout(resolve, 1_000));
        return late.then(() => 'too late');
      },
    });
    const abandoned = nextEvent(worker, 'handler-abandoned');
    const completed = nextEvent(worker, 'task-completed');
    const run = worker.run();
    const abandonedEvent = await abandoned;
    const started = Date.now();
    const done = await completed;
    expect(Date.now() - started).toBeLessThan(900); // retried while the first handler still hangs
    expect(abandonedEvent).toMatchObject({ task: { id, attempts: 1 } });
    expect((abandonedEvent.reason as { code?: string }).code).toBe('TIMEOUT');
    expect(done.task.attempts).toBe(2);
    expect(done.fence).toBeGreaterThan(abandonedEvent.fence);
    await late;
    await worker.stop();
    await run;
    // The abandoned handler's eventual result was never written.
    expect(await source.get(id!)).toMatchObject({ status: 'done', result: 'ok', attempts: 2 });
    expect(worker.stats()).toMatchObject({ handlerTimeouts: 1, abandonedHandlers: 1, staleWrites: 0 });
    expect(store.list()).toEqual([]);
  });

  it('kills a task whose payload the handler rejects as invalid, on the first attempt, keeping the error', async () => {
    const { provider, source } = setup();
    const schema = z.object({ to: z.email(), subject: z.string().min(1) });
    const [bad, good, unknownKind] = await source.enqueue([
      { kind: 'email', payload: { to: 42, subject: '' }, maxAttempts: 5 },
      { kind: 'email', payload: { to: 'a@example.com', subject: 'hi' }, maxAttempts: 5 },
      { kind: 'sms', payload: {}, maxAttempts: 5 },
    ]);
    const worker = new Worker({
      locks: provider(),
      source,
      schedule: { once: true },
      handler: ({ task }) => {
        if (task.kind !== 'email') throw invalidTask(`no handler for kind '${task.kind}'`);
        const email = parsePayload(task, schema);
        return { sent: email.to };
      },
    });
    const dead = record(worker, 'task-dead');
    await worker.run();

    const badTask = (await source.get(bad!))!;
    expect(badTask).toMatchObject({ status: 'dead', attempts: 1 });
    expect(badTask.lastError).toMatch(/^TASK_INVALID: invalid payload for task .*to: .*subject: /);
    expect(await source.get(good!)).toMatchObject({ status: 'done', result: { sent: 'a@example.com' } });
    expect(await source.get(unknownKind!)).toMatchObject({
      status: 'dead',
      attempts: 1,
      lastError: "TASK_INVALID: no handler for kind 'sms'",
    });
    expect(dead.map((e) => (e.error as { code?: string }).code)).toEqual(['TASK_INVALID', 'TASK_INVALID']);
    expect(worker.stats()).toMatchObject({ dead: 2, completed: 1, failed: 0 });
  });

  it('a result that can never be stored makes the task dead at once (retrying would produce the same)', async () => {
    const { provider, source } = setup();
    const [id] = await source.enqueue({ kind: 'bigint', maxAttempts: 5 });
    const worker = new Worker({
      locks: provider(),
      source,
      schedule: { once: true },
      handler: () => ({ value: 1n }),
    });
    await worker.run();
    expect(await source.get(id!)).toMatchObject({
      status: 'dead',
      attempts: 1,
      lastError: expect.stringMatching(/^HANDLER_FAILED: result could not be stored/),
    });
  });
});

describe('Worker: transport failures', () => {
  it('survives the source and the lock backend failing mid-pass, losing and repeating nothing', async () => {
    const { store, provider, source } = setup();
    await source.enqueue(Array.from({ length: 300 }, (_, i) => ({ kind: 'n', payload: i })));
    const executions = new Map<string, number>();
    const workers = ['A', 'B'].map(
      (id) =>
        new Worker({
          id,
          locks: provider(),
          source,
          concurrency: 3,
          pageSize: 10,
          schedule: { every: 20 },
          retry: { baseMs: 5, maxMs: 50 },
          handler: async ({ task }) => {
            executions.set(task.id, (executions.get(task.id) ?? 0) + 1);
            await new Promise((resolve) => setImmediate(resolve));
            return task.payload;
          },
        }),
    );
    const errorLogs = workers.map((w) => record(w, 'error'));
    let completed = 0;
    for (const w of workers) {
      w.on('task-completed', () => {
        completed++;
        // Inject faults while passes are in full swing.
        if (completed === 30) source.failNext(2, { operations: ['due'] });
        if (completed === 60) source.failNext(1, { operations: ['claim'] });
        if (completed === 90) source.failNext(2, { operations: ['complete'], when: 'after' });
        if (completed === 120) source.failNext(1, { operations: ['complete'] });
        if (completed === 150) store.failNext(2);
      });
    }
    const runs = workers.map((w) => w.run());
    await until(() => source.counts().done === 300, 20_000, 'all tasks done despite faults');

    // Still running: new work is picked up.
    const [later] = await source.enqueue({ kind: 'n', payload: 'later' });
    await until(() => executions.get(later!) === 1, 5_000, 'a task enqueued after the faults');
    await Promise.all(workers.map((w) => w.stop()));
    await Promise.all(runs);

    expect(source.counts()).toEqual({ pending: 0, running: 0, done: 301, failed: 0, dead: 0 });
    expect([...executions.values()].filter((n) => n !== 1)).toEqual([]);
    expect(executions.size).toBe(301);
    const errors = errorLogs.flat();
    expect(errors.length).toBeGreaterThanOrEqual(6);
    expect(workers.reduce((n, w) => n + w.stats().errors, 0)).toBe(errors.length);
    const phases = new Set(errors.map((e) => e.phase));
    expect(phases.has('pass')).toBe(true);
    expect(phases.has('write')).toBe(true);
    expect(errors.every((e) => (e.error as { code?: string }).code === 'UNAVAILABLE')).toBe(true);
    // A write whose reply was lost is recognised on retry as applied, not counted as stale.
    expect(workers.reduce((n, w) => n + w.stats().staleWrites, 0)).toBe(0);
    expect(workers.reduce((n, w) => n + w.stats().completed, 0)).toBe(301);
    expect(store.list()).toEqual([]);
  });
});

describe('Worker: a lost reply followed by another claim', () => {
  it('reports the outcome as unknown (an error), never as a stale write, when another claim came in between', async () => {
    const { provider } = setup();
    /** fail() applies, then a takeover claims the task, then the reply is lost. */
    class LostReplyThenTakeover extends MemoryTaskSource {
      armed = true;
      override async fail(...args: Parameters<MemoryTaskSource['fail']>) {
        const result = await super.fail(...args);
        if (this.armed) {
          this.armed = false;
          const [id, fence] = args;
          await this.claim(id, fence + 1_000, 'rescuer');
          throw new UnavailableError('reply lost (injected)');
        }
        return result;
      }
    }
    const source = new LostReplyThenTakeover({ retryDelayMs: () => 0 });
    const [id] = await source.enqueue({ kind: 'x', maxAttempts: 5 });
    const worker = new Worker({
      locks: provider(),
      source,
      schedule: { once: true },
      retry: { baseMs: 1, maxMs: 5 },
      handler: () => {
        throw new Error('handler failed');
      },
    });
    const stale = record(worker, 'stale-write');
    const errors = record(worker, 'error');
    await worker.run();
    expect(stale).toEqual([]);
    expect(errors.some((e) => /whether it applied is unknown/.test(String((e.error as Error).message)))).toBe(
      true,
    );
    expect(await source.get(id!)).toMatchObject({ status: 'running', workerId: 'rescuer' });
  });
});
