import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkTrace, loadRun } from './trace-check.mjs';
import { claim, complete, explain, fail } from './trace-rules.mjs';

// The trace check must pass a clean history and flag every step the model forbids. Each test starts from a
// hand-made history (task 1 done; task 2 taken over from a paused worker whose late complete was rejected;
// task 3 dead after a retry) and plants one fault in it.

type Trace = Parameters<typeof checkTrace>[0];

function cleanTrace(): Trace {
  let id = 0;
  const tr = (
    taskId: string,
    oldStatus: string | null,
    newStatus: string,
    oldFence: number | null,
    newFence: number,
    at: number,
  ) => ({ id: ++id, taskId, oldStatus, newStatus, oldFence, newFence, at });
  return {
    tasks: [
      { id: '1', status: 'done', attempts: 1, fence: 10 },
      { id: '2', status: 'done', attempts: 2, fence: 25 },
      { id: '3', status: 'dead', attempts: 2, fence: 32 },
    ],
    transitions: [
      tr('1', 'pending', 'running', null, 10, 1_000),
      tr('1', 'running', 'done', 10, 10, 1_200),
      tr('2', 'pending', 'running', null, 20, 1_000),
      tr('2', 'running', 'running', 20, 25, 3_000),
      tr('2', 'running', 'done', 25, 25, 3_200),
      tr('3', 'pending', 'running', null, 30, 1_000),
      tr('3', 'running', 'failed', 30, 30, 1_050),
      tr('3', 'failed', 'running', 30, 32, 2_000),
      tr('3', 'running', 'dead', 32, 32, 2_050),
    ],
    effectLog: [
      { taskId: '1', fence: 10, worker: 'a', applied: true, at: 1_100 },
      { taskId: '2', fence: 20, worker: 'a', applied: true, at: 1_500 },
      { taskId: '2', fence: 25, worker: 'b', applied: true, at: 3_100 },
      { taskId: '2', fence: 20, worker: 'a', applied: false, at: 3_500 },
    ].map((e, i) => ({ id: i + 1, ...e })),
    leases: [
      { key: 'task/1', owner: 'a', fence: 10, start: 900, end: 1_300, endKind: 'released' },
      { key: 'task/2', owner: 'a', fence: 20, start: 900, end: 2_500, endKind: 'expired' },
      { key: 'task/3', owner: 'a', fence: 30, start: 900, end: 1_100, endKind: 'released' },
      { key: 'task/2', owner: 'b', fence: 25, start: 2_900, end: 3_300, endKind: 'released' },
      { key: 'task/3', owner: 'b', fence: 32, start: 1_900, end: 2_100, endKind: 'released' },
    ],
    workerEvents: [
      { worker: 'a', msg: 'task started', taskId: '1', fence: 10 },
      { worker: 'a', msg: 'task completed', taskId: '1', fence: 10 },
      { worker: 'a', msg: 'task started', taskId: '2', fence: 20 },
      { worker: 'b', msg: 'task started', taskId: '2', fence: 25 },
      { worker: 'b', msg: 'task completed', taskId: '2', fence: 25 },
      {
        worker: 'a',
        msg: 'stale write rejected (a newer fence exists)',
        taskId: '2',
        fence: 20,
        operation: 'complete',
      },
      { worker: 'a', msg: 'task started', taskId: '3', fence: 30 },
      { worker: 'a', msg: 'task failed; will retry', taskId: '3', fence: 30 },
      { worker: 'b', msg: 'task started', taskId: '3', fence: 32 },
      { worker: 'b', msg: 'task dead', taskId: '3', fence: 32 },
    ],
    exactFences: true,
    maxAttempts: 2,
  };
}

function rulesBroken(trace: Trace): string[] {
  return checkTrace(trace).violations.map((v) => v.rule);
}

describe('the model’s transition rules', () => {
  it('claim: runnable and an older fence; the last attempt of a running task is buried', () => {
    expect(claim({ status: 'pending', fence: null, attempts: 0 }, 1, 2)).toEqual({
      status: 'running',
      fence: 1,
      attempts: 1,
    });
    expect(claim({ status: 'failed', fence: 3, attempts: 1 }, 3, 2)).toBeNull();
    expect(claim({ status: 'done', fence: 3, attempts: 1 }, 4, 2)).toBeNull();
    expect(claim({ status: 'running', fence: 3, attempts: 2 }, 4, 2)).toEqual({
      status: 'dead',
      fence: 4,
      attempts: 2,
    });
  });

  it('complete and fail: only the running claim that holds the fence', () => {
    expect(complete({ status: 'running', fence: 3, attempts: 1 }, 2)).toBeNull();
    expect(complete({ status: 'failed', fence: 3, attempts: 1 }, 3)).toBeNull();
    expect(fail({ status: 'running', fence: 3, attempts: 1 }, 3, true, 2)?.status).toBe('failed');
    expect(fail({ status: 'running', fence: 3, attempts: 2 }, 3, true, 2)?.status).toBe('dead');
    expect(explain({ status: 'done', fence: 3, attempts: 1 }, { status: 'done', fence: 3 }, 2)).toEqual([]);
  });
});

describe('trace check', () => {
  it('passes a clean history and counts the steps it checked', () => {
    const { violations, notes, steps } = checkTrace(cleanTrace());
    expect(violations).toEqual([]);
    expect(notes).toEqual([]);
    expect(steps).toMatchObject({ grant: 5, claim: 5, complete: 2, fail: 2, effect: 3 });
  });

  it('flags a completion by a worker whose fence is no longer the task’s (unfenced complete)', () => {
    const trace = cleanTrace();
    // Worker a's late complete under fence 20 applied (it should have been stale) while b ran under 25.
    trace.workerEvents[5] = { worker: 'a', msg: 'task completed', taskId: '2', fence: 20 };
    trace.workerEvents[4] = {
      worker: 'b',
      msg: 'stale write rejected (a newer fence exists)',
      taskId: '2',
      fence: 25,
      operation: 'complete',
    };
    expect(rulesBroken(trace)).toEqual(['reports_true', 'reports_true']);
  });

  it('flags a claim under an equal fence, a claim of a done task, and a transition out of done', () => {
    const equal = cleanTrace();
    equal.transitions[7] = { ...equal.transitions[7]!, newFence: 30 };
    equal.transitions[8] = { ...equal.transitions[8]!, oldFence: 30, newFence: 30 };
    equal.tasks[2] = { ...equal.tasks[2]!, fence: 30 };
    for (const e of equal.workerEvents) if (e.fence === 32) e.fence = 30;
    // The replay does not count the forbidden claim as an attempt, so the final row disagrees too.
    expect(rulesBroken(equal)).toEqual(['claim', 'continuity']);

    const reopened = cleanTrace();
    reopened.transitions.push({
      id: 100,
      taskId: '1',
      oldStatus: 'done',
      newStatus: 'running',
      oldFence: 10,
      newFence: 11,
      at: 5_000,
    });
    expect(rulesBroken(reopened)).toEqual(['claim', 'continuity']);

    const left = cleanTrace();
    left.transitions.push({
      id: 100,
      taskId: '1',
      oldStatus: 'done',
      newStatus: 'failed',
      oldFence: 10,
      newFence: 10,
      at: 5_000,
    });
    expect(rulesBroken(left)).toEqual(['outcome', 'continuity']);
  });

  it('flags a burial before the last attempt and a row that ends where its steps do not lead', () => {
    const early = cleanTrace();
    early.transitions.splice(6, 3, {
      id: 7,
      taskId: '3',
      oldStatus: 'running',
      newStatus: 'dead',
      oldFence: 30,
      newFence: 32,
      at: 2_000,
    });
    early.tasks[2] = { ...early.tasks[2]!, attempts: 1 };
    early.workerEvents.splice(7);
    expect(rulesBroken(early)).toEqual(['claim']);

    const missed = cleanTrace();
    missed.tasks[0] = { ...missed.tasks[0]!, attempts: 2 };
    expect(rulesBroken(missed)).toEqual(['continuity']);
  });

  it('flags fences that do not rise at the lock server, and a claim under a fence it never granted', () => {
    const fallen = cleanTrace();
    fallen.leases[3] = { ...fallen.leases[3]!, fence: 19 };
    expect(rulesBroken(fallen)).toContain('fences_rise');

    const forged = cleanTrace();
    forged.leases.pop();
    expect(rulesBroken(forged)).toEqual(['fences_rise']);
  });

  it('flags effects below the fence seen, twice under one fence, without a claim, or by another fence after done', () => {
    const below = cleanTrace();
    below.effectLog[3] = { ...below.effectLog[3]!, applied: true, at: 3_150 };
    expect(rulesBroken(below)).toContain('effect_fenced');

    const twice = cleanTrace();
    twice.effectLog.push({ id: 5, taskId: '1', fence: 10, worker: 'a', applied: true, at: 1_150 });
    expect(rulesBroken(twice)).toEqual(['effect_fenced']);

    const unclaimed = cleanTrace();
    unclaimed.effectLog[0] = { ...unclaimed.effectLog[0]!, at: 900 };
    expect(rulesBroken(unclaimed)).toEqual(['effect_fenced']);

    const superseded = cleanTrace();
    superseded.effectLog.splice(2, 1);
    expect(rulesBroken(superseded)).toEqual(['effect_fenced']);
  });

  it('flags a handler started without a claim and reports that contradict the table', () => {
    const unclaimed = cleanTrace();
    unclaimed.workerEvents.push({ worker: 'c', msg: 'task started', taskId: '1', fence: 11 });
    expect(rulesBroken(unclaimed)).toEqual(['reports_true']);

    const skipped = cleanTrace();
    skipped.workerEvents.push({ worker: 'a', msg: 'claim skipped', taskId: '3', fence: 32, reason: 'stale' });
    expect(rulesBroken(skipped)).toEqual(['reports_true']);

    const failed = cleanTrace();
    failed.workerEvents.push({ worker: 'a', msg: 'task failed; will retry', taskId: '1', fence: 10 });
    expect(rulesBroken(failed)).toEqual(['reports_true']);
  });

  it('notes, without failing, a fail reported stale although it applied (the documented finding)', () => {
    const trace = cleanTrace();
    trace.workerEvents[7] = {
      worker: 'a',
      msg: 'stale write rejected (a newer fence exists)',
      taskId: '3',
      fence: 30,
      operation: 'fail',
    };
    const { violations, notes } = checkTrace(trace);
    expect(violations).toEqual([]);
    expect(notes.map((n) => n.message)).toEqual([
      'a: task 3 fence 30: reported a stale fail, but it applied',
    ]);
  });

  it('flags a task that never finished', () => {
    const trace = cleanTrace();
    trace.tasks[0] = { ...trace.tasks[0]!, status: 'running' };
    trace.transitions.splice(1, 1);
    trace.workerEvents.splice(1, 1);
    expect(rulesBroken(trace)).toEqual(['finished']);
  });
});

describe('loading a chaos run directory', () => {
  it('reads the tables, the backend and the workers’ protocol reports (pino JSON lines)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-trace-'));
    try {
      const clean = cleanTrace();
      writeFileSync(
        join(dir, 'tables.json'),
        JSON.stringify({
          tasks: clean.tasks,
          transitions: clean.transitions,
          effectLog: clean.effectLog,
          leases: clean.leases,
          executions: [],
          effects: [],
        }),
      );
      writeFileSync(join(dir, 'summary.json'), JSON.stringify({ backend: 'dynamodb' }));
      mkdirSync(join(dir, 'workers'));
      const line = (fields: object) =>
        JSON.stringify({ level: 'debug', time: '2026-12-04T15:08:41.656Z', ...fields });
      const byWorker = new Map<string, string[]>();
      for (const { worker, ...e } of clean.workerEvents) {
        byWorker.set(worker, [...(byWorker.get(worker) ?? []), line({ ...e, kind: 'chaos' })]);
      }
      for (const [worker, lines] of byWorker) {
        const noise = [line({ msg: 'pass finished', pass: 1 }), 'not json', ''];
        writeFileSync(join(dir, 'workers', `${worker}.log`), [...noise, ...lines].join('\n'));
      }
      const trace = loadRun(dir, { maxAttempts: 2 });
      expect(trace.exactFences).toBe(true);
      expect(trace.workerEvents).toHaveLength(clean.workerEvents.length);
      expect(trace.workerEvents).toEqual(expect.arrayContaining(clean.workerEvents));
      expect(checkTrace(trace).violations).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
