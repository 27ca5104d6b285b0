import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import {
  type HeartbeatOptions,
  ManualClock,
  MemoryLockProvider,
  MemoryLockStore,
  MemoryTaskSource,
  WORKER_RECORD_RETENTION_MS,
  Worker,
  type WorkerBeat,
  type WorkerOptions,
} from '../../src/index.js';
import { gate, record, until } from './helpers.js';

/** A memory source that records every beat it receives, and can make beats hang until released. */
class BeatRecordingSource extends MemoryTaskSource {
  readonly beats: WorkerBeat[] = [];
  hang: Promise<void> | undefined;

  override async heartbeat(beat: WorkerBeat, options?: HeartbeatOptions): Promise<void> {
    this.beats.push(beat);
    if (this.hang) await this.hang;
    return super.heartbeat(beat, options);
  }
}

function manualWorker(options: Partial<WorkerOptions> = {}) {
  const clock = new ManualClock({ wallStart: Date.UTC(2026, 11, 6, 12) });
  const locks = new MemoryLockProvider({ store: new MemoryLockStore({ clock }), ttlMs: 600_000 });
  const source = new BeatRecordingSource({ clock });
  const worker = new Worker({
    id: 'beating',
    locks,
    source,
    clock,
    schedule: { every: 1_000 },
    handler: () => 'ok',
    wakeOnEnqueue: false,
    heartbeatEveryMs: 10_000,
    ...options,
  });
  return { clock, source, worker };
}

describe('Worker heartbeat', () => {
  it('beats at start, every heartbeatEveryMs on the worker clock, and once stopped on a clean stop', async () => {
    const { clock, source, worker } = manualWorker();
    const run = worker.run();
    await clock.advance(0);
    expect(source.beats).toHaveLength(1);
    expect(source.beats[0]).toMatchObject({
      workerId: 'beating',
      state: 'running',
      host: hostname(),
      pid: process.pid,
      uptimeMs: 0,
      mode: 'task',
      locks: 'memory',
      intervalMs: 10_000,
      running: 0,
      taskIds: [],
      counters: { claimed: 0, completed: 0, failed: 0, dead: 0, leaseLost: 0, staleWrites: 0, errors: 0 },
    });
    await clock.advance(9_999);
    expect(source.beats).toHaveLength(1);
    await clock.advance(1);
    expect(source.beats).toHaveLength(2);
    expect(source.beats[1]!.uptimeMs).toBe(10_000);
    await clock.advance(20_000);
    expect(source.beats).toHaveLength(4);
    expect(new Set(source.beats.map((b) => b.instance)).size).toBe(1);

    const stopped = worker.stop();
    await clock.advance(0);
    await stopped;
    await run;
    expect(source.beats).toHaveLength(5);
    expect(source.beats[4]).toMatchObject({ state: 'stopped', uptimeMs: 30_000 });
    const [stored] = await source.workers();
    expect(stored).toMatchObject({ workerId: 'beating', state: 'stopped' });
    expect(stored!.stoppedAt).toEqual(new Date(clock.wallNow()));
    // No timer of the heartbeat is left behind.
    await clock.advance(60_000);
    expect(source.beats).toHaveLength(5);
  });

  it('publishes what runs now and the counters; the source keeps the previous beat for rates', async () => {
    const release = gate();
    let calls = 0;
    const { clock, source, worker } = manualWorker({
      handler: () => (++calls === 1 ? 'quick' : release.promise),
    });
    const [first] = await source.enqueue({ kind: 'quick' });
    const run = worker.run();
    await clock.advance(0);
    await until(() => worker.stats().completed === 1, 5_000, 'the first task done');
    const [slow] = await source.enqueue({ kind: 'slow' });
    await clock.advance(1_000);
    await until(() => worker.running().length === 1, 5_000, 'the slow task running');
    await clock.advance(9_000);
    const beat = source.beats.at(-1)!;
    expect(beat).toMatchObject({ running: 1, taskIds: [slow] });
    expect(beat.counters).toMatchObject({ claimed: 2, completed: 1 });
    const [stored] = await source.workers();
    expect(stored!.beatAt).toEqual(new Date(clock.wallNow()));
    expect(stored!.startedAt).toEqual(new Date(clock.wallNow() - 10_000));
    expect(stored!.previous).toEqual({
      beatAt: new Date(clock.wallNow() - 10_000),
      counters: expect.objectContaining({ claimed: 0, completed: 0 }),
    });
    expect(first).toBeDefined();
    release.open();
    await until(() => worker.stats().completed === 2, 5_000, 'the slow task done');
    const stopped = worker.stop();
    await clock.advance(0);
    await stopped;
    await run;
    expect(source.beats.at(-1)).toMatchObject({
      state: 'stopped',
      running: 0,
      taskIds: [],
      counters: expect.objectContaining({ completed: 2 }),
    });
  });

  it('a failing beat is an error event (phase heartbeat) retried at the next tick; tasks keep running', async () => {
    const { clock, source, worker } = manualWorker();
    const errors = record(worker, 'error');
    source.failNext(2, { operations: ['heartbeat'] });
    const run = worker.run();
    await clock.advance(0);
    expect(errors.map((e) => e.phase)).toEqual(['heartbeat']);
    expect(await source.workers()).toEqual([]);
    await source.enqueue([{ kind: 'a' }, { kind: 'b' }]);
    await clock.advance(1_000);
    await until(() => source.counts().done === 2, 5_000, 'tasks done while beats fail');
    await clock.advance(9_000);
    expect(errors.map((e) => e.phase)).toEqual(['heartbeat', 'heartbeat']);
    await clock.advance(10_000);
    expect(errors).toHaveLength(2);
    const [stored] = await source.workers();
    expect(stored).toMatchObject({ state: 'running', counters: expect.objectContaining({ completed: 2 }) });
    // The failed beats counted as errors, and the beat that got through says so.
    expect(stored!.counters.errors).toBe(2);
    expect(worker.stats().errors).toBe(2);
    const stopped = worker.stop();
    await clock.advance(0);
    await stopped;
    await run;
  });

  it('a hanging beat neither slows the passes nor piles up beats, and cannot hold up the stop', async () => {
    const { clock, source, worker } = manualWorker();
    const hang = gate();
    source.hang = hang.promise;
    const passes = record(worker, 'pass-started');
    const run = worker.run();
    await clock.advance(0);
    await source.enqueue([{ kind: 'a' }, { kind: 'b' }, { kind: 'c' }]);
    await clock.advance(1_000);
    await until(() => source.counts().done === 3, 5_000, 'tasks done while the beat hangs');
    await clock.advance(29_000);
    expect(passes).toHaveLength(31);
    // One beat is under way: no second one started beside it.
    expect(source.beats).toHaveLength(1);
    const stopped = worker.stop();
    let done = false;
    void stopped.then(() => {
      done = true;
    });
    await clock.advance(9_999);
    expect(done).toBe(false);
    await clock.advance(1);
    await until(() => done, 5_000, 'the stop to give up on the beat');
    await run;
    expect(source.beats).toHaveLength(1);
    hang.open();
  });

  it('heartbeatEveryMs: false sends none; a source without heartbeat() is fine', async () => {
    const { clock, source, worker } = manualWorker({ heartbeatEveryMs: false });
    const run = worker.run();
    await clock.advance(30_000);
    const stopped = worker.stop();
    await clock.advance(0);
    await stopped;
    await run;
    expect(source.beats).toEqual([]);

    const plain = new MemoryTaskSource();
    Object.defineProperty(plain, 'heartbeat', { value: undefined });
    const other = new Worker({
      locks: new MemoryLockProvider({ lockDelayMs: 0 }),
      source: plain,
      handler: () => 'ok',
      schedule: { every: 10 },
    });
    const otherRun = other.run();
    await plain.enqueue({ kind: 'k' });
    await until(() => plain.counts().done === 1, 5_000, 'the task done');
    await other.stop();
    await otherRun;
  });

  it('rejects a heartbeat interval out of bounds, naming the option', () => {
    for (const heartbeatEveryMs of [0, 99, 3_600_001, Number.NaN]) {
      expect(() => manualWorker({ heartbeatEveryMs })).toThrow(/heartbeatEveryMs/);
    }
  });
});

describe('MemoryTaskSource heartbeats', () => {
  const beat = (over: Partial<WorkerBeat> = {}): WorkerBeat => ({
    workerId: 'w1',
    instance: 'run-1',
    state: 'running',
    host: 'h',
    pid: 1,
    uptimeMs: 0,
    mode: 'task',
    locks: 'memory',
    intervalMs: 1_000,
    running: 0,
    taskIds: [],
    counters: { claimed: 0, completed: 0, failed: 0, dead: 0, leaseLost: 0, staleWrites: 0, errors: 0 },
    ...over,
  });

  it('a new run under the same id starts over; a first beat forgets workers silent for a day', async () => {
    const clock = new ManualClock();
    const source = new MemoryTaskSource({ clock });
    await source.heartbeat(beat({ workerId: 'old' }));
    await source.heartbeat(beat());
    await clock.advance(1_000);
    await source.heartbeat(beat({ uptimeMs: 1_000, counters: { ...beat().counters, completed: 5 } }));
    let [w1] = await source.workers();
    expect(w1!.previous?.counters.completed).toBe(0);
    await clock.advance(1_000);
    await source.heartbeat(beat({ instance: 'run-2', uptimeMs: 10 }));
    [w1] = await source.workers();
    expect(w1).toMatchObject({ instance: 'run-2', previous: null });
    expect(w1!.startedAt).toEqual(new Date(clock.wallNow() - 10));
    expect((await source.workers()).map((w) => w.workerId)).toEqual(['w1', 'old']);
    await clock.advance(WORKER_RECORD_RETENTION_MS + 1);
    await source.heartbeat(beat({ workerId: 'new' }));
    expect((await source.workers()).map((w) => w.workerId)).toEqual(['new']);
  });

  it('refuses malformed beats with INVALID_ARGUMENT', async () => {
    const source = new MemoryTaskSource();
    for (const bad of [
      beat({ workerId: '' }),
      beat({ state: 'gone' as never }),
      beat({ pid: -1 }),
      beat({ taskIds: Array.from({ length: 11 }, (_, i) => String(i)) }),
      beat({ counters: { ...beat().counters, completed: 1.5 } }),
      beat({ host: 'a\0b' }),
    ]) {
      await expect(source.heartbeat(bad)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
  });
});
