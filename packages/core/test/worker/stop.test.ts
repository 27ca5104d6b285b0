import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { exitCodeOfSignal, MemoryTaskSource, Worker } from '../../src/index.js';
import { memoryLocks, RecordingProvider, record, sleepMs, until } from './helpers.js';

describe('Worker.stop()', () => {
  it('lets running handlers finish within the grace period, aborts the rest, releases and destroys', async () => {
    const { store } = memoryLocks();
    const locks = new RecordingProvider({ store, ttlMs: 2_000, lockDelayMs: 0 });
    const source = new MemoryTaskSource();
    const [quick, honours, ignores] = await source.enqueue([
      { kind: 'quick' },
      { kind: 'honours-signal' },
      { kind: 'ignores-signal' },
    ]);
    const reasons = new Map<string, unknown>();
    const worker = new Worker({
      id: 'W',
      locks,
      source,
      concurrency: 3,
      schedule: { every: 10 },
      abandonAfterMs: 100,
      handler: async ({ task, signal }) => {
        signal.addEventListener('abort', () => reasons.set(task.kind, signal.reason));
        if (task.kind === 'quick') {
          await sleepMs(60);
          return 'finished in time';
        }
        if (task.kind === 'honours-signal') {
          await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
          throw signal.reason;
        }
        await sleepMs(2_000);
        return 'never written';
      },
    });
    const started = record(worker, 'task-started');
    const stopped = record(worker, 'stopped');
    const abandoned = record(worker, 'handler-abandoned');
    const run = worker.run();
    await until(() => started.length === 3, 5_000, 'three handlers to start');
    const sessionId = worker.sessionId!;
    expect(store.list('task/')).toHaveLength(3);

    const t0 = Date.now();
    const stopping = worker.stop({ graceMs: 250 });
    expect(worker.stop()).toBe(stopping); // idempotent: one shared promise
    const [late] = await source.enqueue({ kind: 'quick' }); // arrives while stopping: not taken
    await stopping;
    const took = Date.now() - t0;
    await run;

    expect(took).toBeGreaterThanOrEqual(240);
    expect(took).toBeLessThan(250 + 100 + 500);
    expect(await source.get(quick!)).toMatchObject({ status: 'done', result: 'finished in time' });
    expect(reasons.has('quick')).toBe(false);
    for (const id of [honours!, ignores!]) {
      const task = (await source.get(id))!;
      expect(task.status).toBe('failed');
      expect(task.lastError).toMatch(/^ABORTED: worker W stopped: handlers did not finish within 250 ms/);
    }
    expect((reasons.get('honours-signal') as { code?: string }).code).toBe('ABORTED');
    expect((reasons.get('ignores-signal') as { code?: string }).code).toBe('ABORTED');
    expect(abandoned.map((e) => e.task.kind)).toEqual(['ignores-signal']);
    expect(await source.get(late!)).toMatchObject({ status: 'pending', attempts: 0 });
    expect(store.list()).toEqual([]);
    expect(store.hasSession(sessionId)).toBe(false);
    expect(locks.last.signal.aborted).toBe(true);
    expect(worker.sessionId).toBeUndefined();
    expect(stopped).toHaveLength(1);
    expect(stopped[0]!.stats).toMatchObject({ completed: 1, failed: 2, abandonedHandlers: 1, inFlight: 0 });

    await worker.stop(); // still fine after completion
    expect(stopped).toHaveLength(1);
    await expect(worker.run()).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(worker.runOnce()).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('returns at once when nothing runs, and a shorter grace period shortens a stop in progress', async () => {
    const { store, provider } = memoryLocks();
    const source = new MemoryTaskSource();
    const idle = new Worker({ locks: provider(), source, handler: () => undefined });
    await idle.stop();
    await expect(idle.run()).rejects.toMatchObject({ code: 'CLOSED' });

    await source.enqueue({ kind: 'long' });
    const worker = new Worker({
      locks: provider(),
      source,
      handler: ({ signal }) =>
        new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
    });
    const started = record(worker, 'task-started');
    const run = worker.run();
    await until(() => started.length === 1);
    const t0 = Date.now();
    const first = worker.stop({ graceMs: 60_000 });
    await sleepMs(20);
    const second = worker.stop({ graceMs: 0 });
    expect(second).toBe(first);
    await first;
    await run;
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(source.counts()).toMatchObject({ failed: 1 });
    expect(store.list()).toEqual([]);
  });

  it('stops on a process signal and removes its listeners afterwards', async () => {
    const { provider } = memoryLocks();
    const source = new MemoryTaskSource();
    const worker = new Worker({ locks: provider(), source, handler: () => undefined });
    const before = process.listenerCount('SIGUSR2');
    worker.stopOnSignals(['SIGUSR2']);
    expect(process.listenerCount('SIGUSR2')).toBe(before + 1);
    const run = worker.run();
    await sleepMs(20);
    process.emit('SIGUSR2', 'SIGUSR2');
    await run;
    expect(worker.stopping).toBe(true);
    expect(process.listenerCount('SIGUSR2')).toBe(before);
  });

  it('aborts running handlers at once on a second process signal', async () => {
    const { store, provider } = memoryLocks();
    const source = new MemoryTaskSource();
    await source.enqueue({ kind: 'long' });
    const worker = new Worker({
      locks: provider(),
      source,
      stopGraceMs: 60_000,
      handler: ({ signal }) =>
        new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
    });
    const started = record(worker, 'task-started');
    const failed = record(worker, 'task-failed');
    const remove = worker.stopOnSignals(['SIGUSR2']);
    const run = worker.run();
    await until(() => started.length === 1);
    await expect(worker.runOnce()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    process.emit('SIGUSR2', 'SIGUSR2');
    await sleepMs(20);
    expect(worker.stopping).toBe(true);
    expect(source.counts().running).toBe(1); // first signal: graceful, the handler keeps running
    const t0 = Date.now();
    process.emit('SIGUSR2', 'SIGUSR2');
    await run;
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(failed).toHaveLength(1);
    expect((failed[0]!.error as Error).message).toMatch(/stopped by a second signal/);
    expect(store.list()).toEqual([]);
    remove();
  });

  it('resolves run() for { once: true } after one pass and its tasks, then stops', async () => {
    const { store, provider } = memoryLocks();
    const source = new MemoryTaskSource();
    await source.enqueue(Array.from({ length: 25 }, () => ({ kind: 'k' })));
    const worker = new Worker({
      locks: provider(),
      source,
      concurrency: 5,
      pageSize: 7,
      schedule: { once: true },
      handler: () => sleepMs(2),
    });
    const passes = record(worker, 'pass-finished');
    const stopped = record(worker, 'stopped');
    await worker.run();
    expect(passes).toHaveLength(1);
    expect(passes[0]).toMatchObject({ outcome: 'complete', seen: 25, claimed: 25, lockAttempts: 25 });
    expect(source.counts().done).toBe(25);
    expect(stopped).toHaveLength(1);
    expect(store.list()).toEqual([]);
  });
});

/** Signals sent and exits seen without touching the test runner's process. */
class FakeSignals extends EventEmitter {
  readonly exits: number[] = [];
  exit(code: number): void {
    this.exits.push(code);
  }
  send(signal: NodeJS.Signals): void {
    this.emit(signal, signal);
  }
}

describe('Worker.stopOnSignals() escalation', () => {
  function stuckWorker() {
    const { store, provider } = memoryLocks();
    const source = new MemoryTaskSource();
    const worker = new Worker({
      locks: provider(),
      source,
      stopGraceMs: 60_000,
      abandonAfterMs: 60_000,
      handler: ({ signal }) =>
        new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
    });
    return { store, source, worker };
  }

  it('step 1: the first signal stops gracefully; the running handler keeps running', async () => {
    const { source, worker } = stuckWorker();
    await source.enqueue({ kind: 'long' });
    const target = new FakeSignals();
    const seen: Array<[string, number]> = [];
    const started = record(worker, 'task-started');
    worker.stopOnSignals({ target, exitOnThird: true, onSignal: (s, n) => seen.push([s, n]) });
    const run = worker.run();
    await until(() => started.length === 1);
    target.send('SIGTERM');
    await sleepMs(30);
    expect(worker.stopping).toBe(true);
    expect(source.counts().running).toBe(1);
    expect(seen).toEqual([['SIGTERM', 1]]);
    expect(target.exits).toEqual([]);
    target.send('SIGTERM');
    await run;
  });

  it('step 2: a second signal aborts running handlers at once, without exiting', async () => {
    const { store, source, worker } = stuckWorker();
    await source.enqueue({ kind: 'long' });
    const target = new FakeSignals();
    const seen: Array<[string, number]> = [];
    const started = record(worker, 'task-started');
    const failed = record(worker, 'task-failed');
    worker.stopOnSignals({ target, exitOnThird: true, onSignal: (s, n) => seen.push([s, n]) });
    const run = worker.run();
    await until(() => started.length === 1);
    target.send('SIGINT');
    await sleepMs(20);
    expect(failed).toHaveLength(0);
    target.send('SIGINT');
    await run;
    expect(failed).toHaveLength(1);
    expect((failed[0]!.error as Error).message).toMatch(/stopped by a second signal/);
    expect(seen).toEqual([
      ['SIGINT', 1],
      ['SIGINT', 2],
    ]);
    expect(target.exits).toEqual([]);
    expect(store.list()).toEqual([]);
    // Stopped: the listeners are gone, a later signal reaches nothing.
    expect(target.listenerCount('SIGINT')).toBe(0);
    expect(target.listenerCount('SIGTERM')).toBe(0);
  });

  it("step 3: a third signal exits at once with the signal's code (130 SIGINT, 143 SIGTERM)", async () => {
    for (const [signal, code] of [
      ['SIGTERM', 143],
      ['SIGINT', 130],
    ] as const) {
      // A handler that ignores its signal keeps the stop from finishing: the third step is the way out.
      const { provider } = memoryLocks();
      const source = new MemoryTaskSource();
      await source.enqueue({ kind: 'deaf' });
      const worker = new Worker({
        locks: provider(),
        source,
        stopGraceMs: 60_000,
        abandonAfterMs: 300,
        handler: () => sleepMs(500),
      });
      const started = record(worker, 'task-started');
      const stopped = record(worker, 'stopped');
      const target = new FakeSignals();
      const seen: number[] = [];
      worker.stopOnSignals({ target, exitOnThird: true, onSignal: (_, n) => seen.push(n) });
      const run = worker.run();
      await until(() => started.length === 1);
      target.send(signal);
      target.send(signal);
      await sleepMs(20);
      expect(target.exits).toEqual([]);
      target.send(signal);
      expect(target.exits).toEqual([code]);
      expect(stopped).toHaveLength(0); // exited while the stop was still stuck on the handler
      expect(seen).toEqual([1, 2, 3]);
      await run;
      expect(target.listenerCount(signal)).toBe(0);
    }
  });

  it('without exitOnThird, further signals repeat the second step and never exit', async () => {
    const { worker } = stuckWorker();
    const target = new FakeSignals();
    const seen: number[] = [];
    const remove = worker.stopOnSignals({ target, onSignal: (_, n) => seen.push(n) });
    for (let i = 0; i < 4; i++) target.send('SIGTERM');
    expect(target.exits).toEqual([]);
    expect(seen).toEqual([1, 2, 3, 4]);
    remove();
    await worker.stop();
  });

  it('exitCodeOfSignal: 128 + the signal number', () => {
    expect([exitCodeOfSignal('SIGINT'), exitCodeOfSignal('SIGTERM'), exitCodeOfSignal('SIGHUP')]).toEqual([
      130, 143, 129,
    ]);
  });
});
