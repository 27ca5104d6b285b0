import type { WorkerBeat } from '@baton/core';
import type { TestFn } from '../lock-suite/types.js';
import { defineTaskCase, sourceNow, verify, verifyEqual, verifyRejects, verifySame } from './context.js';
import type { TaskSourceFactory, TaskSuiteOptions } from './types.js';

const ZERO = { claimed: 0, completed: 0, failed: 0, dead: 0, leaseLost: 0, staleWrites: 0, errors: 0 };

function beat(over: Partial<WorkerBeat> = {}): WorkerBeat {
  return {
    workerId: 'suite-worker',
    instance: 'run-1',
    state: 'running',
    host: 'suite-host',
    pid: 4242,
    uptimeMs: 0,
    mode: 'task',
    locks: 'memory',
    intervalMs: 10_000,
    running: 1,
    taskIds: ['7'],
    counters: ZERO,
    ...over,
  };
}

/**
 * Heartbeats (optional: sources with `heartbeat` and `workers`): a beat replaces the worker's previous one,
 * is stamped with the source's clock, keeps the previous beat of the same run, starts over for another run,
 * marks a stopped worker, and malformed beats are refused.
 */
export function heartbeatTests(
  test: TestFn,
  factory: TaskSourceFactory,
  options: TaskSuiteOptions = {},
): void {
  defineTaskCase(
    test,
    factory,
    options,
    'heartbeat (optional): one record per worker, on the source clock, keeping the previous beat of the run',
    async (ctx) => {
      const source = ctx.source;
      if (!source.heartbeat || !source.workers) return;
      const before = await sourceNow(source);
      await source.heartbeat(beat());
      const after = await sourceNow(source);
      let [record, ...others] = await source.workers();
      verify(record, 'workers() lists the worker that beat');
      verifyEqual(others.length, 0, 'one record per worker');
      verify(
        record.beatAt.getTime() >= before - 1_000 && record.beatAt.getTime() <= after + 1_000,
        `beatAt is the source's now (${before}..${after}), got ${record.beatAt.getTime()}`,
      );
      verifySame(
        [
          record.workerId,
          record.state,
          record.host,
          record.pid,
          record.running,
          record.taskIds,
          record.previous,
        ],
        ['suite-worker', 'running', 'suite-host', 4242, 1, ['7'], null],
        'the first beat as stored',
      );
      const firstAt = record.beatAt.getTime();
      const counters = { ...ZERO, claimed: 3, completed: 2 };
      await source.heartbeat(beat({ uptimeMs: 5_000, running: 0, taskIds: [], counters }));
      [record, ...others] = await source.workers();
      verifyEqual(others.length, 0, 'a second beat replaces the first');
      verifySame(record!.counters, counters, 'the latest counters');
      verifySame(record!.previous?.counters, ZERO, 'the previous beat of the run is kept');
      verifyEqual(record!.previous?.beatAt.getTime(), firstAt, "the previous beat's time");
      verifyEqual(
        record!.startedAt.getTime(),
        record!.previous!.beatAt.getTime(),
        'the start stays the first beat',
      );

      await source.heartbeat(beat({ state: 'stopped', counters }));
      [record] = await source.workers();
      verifyEqual(record!.state, 'stopped', 'a stopped beat marks the worker stopped');
      verifyEqual(record!.stoppedAt?.getTime(), record!.beatAt.getTime(), 'stoppedAt is its beat');

      await source.heartbeat(beat({ instance: 'run-2' }));
      [record] = await source.workers();
      verifySame(
        [record!.instance, record!.state, record!.stoppedAt, record!.previous],
        ['run-2', 'running', null, null],
        'a new run under the same id starts the record over',
      );
      await source.heartbeat(beat({ workerId: 'suite-other' }));
      verifySame(
        (await source.workers()).map((w) => w.workerId),
        ['suite-other', 'suite-worker'],
        'workers() lists the most recent beat first',
      );
    },
  );

  defineTaskCase(test, factory, options, 'heartbeat (optional): malformed beats are refused', async (ctx) => {
    const source = ctx.source;
    if (!source.heartbeat || !source.workers) return;
    for (const [bad, what] of [
      [beat({ workerId: '' }), 'an empty worker id'],
      [beat({ state: 'gone' as never }), 'an unknown state'],
      [beat({ pid: -1 }), 'a negative pid'],
      [beat({ counters: { ...ZERO, completed: 0.5 } }), 'a fractional counter'],
      [beat({ taskIds: Array.from({ length: 11 }, (_, i) => String(i)) }), 'more than 10 task ids'],
    ] as const) {
      await verifyRejects(source.heartbeat(bad), 'INVALID_ARGUMENT', `a beat with ${what}`);
    }
    verifySame(await source.workers(), [], 'nothing was stored');
  });
}
