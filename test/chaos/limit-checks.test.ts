import { describe, expect, it } from 'vitest';
import { checkLimit, maxOverlap } from './limit-checks.mjs';

// The kind-limit invariant on hand-made histories: a kind limited to 2, two slot keys, five handlers. One of
// them (task 3, worker a) is paused and runs on long after its permit expired at the lock server: it must not
// count once the server gave the slot to someone else.

type Data = Parameters<typeof checkLimit>[0];
const LIMIT = { kind: 'limited', n: 2 };
const slot = (i: number) => `limit/limited/slot/${i}`;

function cleanRun(): Data {
  const exec = (
    taskId: string,
    worker: string,
    slotIndex: number,
    permitFence: number,
    start: number,
    end: number,
  ) => ({
    taskId,
    fence: 100 + Number(taskId),
    worker,
    startedAt: start,
    endedAt: end,
    outcome: 'effect-applied',
    permitKey: slot(slotIndex),
    permitFence,
  });
  const lease = (
    i: number,
    owner: string,
    fence: number,
    start: number,
    end: number | undefined,
    endKind: string,
  ) => ({
    key: slot(i),
    owner,
    fence,
    start,
    end,
    endKind,
  });
  return {
    tasks: [
      ...['1', '2', '3', '4', '5'].map((id) => ({ id, kind: 'limited', status: 'done' })),
      { id: '6', kind: 'chaos', status: 'done' },
    ],
    executions: [
      exec('1', 'a', 0, 5, 1_000, 2_000),
      exec('2', 'b', 1, 6, 1_100, 1_900),
      exec('3', 'a', 1, 7, 2_100, 9_000),
      exec('4', 'b', 1, 8, 3_100, 3_500),
      exec('5', 'c', 0, 9, 3_200, 3_400),
      {
        taskId: '6',
        fence: 1,
        worker: 'c',
        startedAt: 1_000,
        endedAt: 5_000,
        outcome: 'effect-applied',
        permitKey: null,
        permitFence: null,
      },
    ],
    leases: [
      { key: 'task/6', owner: 'c', fence: 1, start: 900, end: 5_100, endKind: 'released' },
      lease(0, 'a', 5, 900, 2_100, 'released'),
      lease(1, 'b', 6, 1_000, 2_000, 'released'),
      lease(1, 'a', 7, 2_050, 3_000, 'invalidated'),
      lease(1, 'b', 8, 3_050, 3_600, 'released'),
      lease(0, 'c', 9, 3_150, 3_450, 'released'),
    ],
  };
}

describe('kind-limit invariant', () => {
  it('passes a clean run: a handler past its expired permit does not count; other kinds are ignored', () => {
    const { violations, metrics } = checkLimit(cleanRun(), LIMIT);
    expect(violations).toEqual([]);
    expect(metrics).toMatchObject({
      tasks: 5,
      done: 5,
      executions: 5,
      withoutPermit: 0,
      slotsUsed: 2,
      permitLeases: 5,
      maxConcurrentValid: 2,
      // Tasks 3 (past its permit), 4 and 5 ran at once.
      maxConcurrentRaw: 3,
    });
  });

  it('catches n + 1 handlers under valid permits (a third slot: workers limited to n + 1)', () => {
    const data = cleanRun();
    data.tasks.push({ id: '7', kind: 'limited', status: 'done' });
    data.executions.push({
      ...data.executions[1],
      taskId: '7',
      worker: 'c',
      permitKey: slot(2),
      permitFence: 11,
    });
    data.leases.push({ key: slot(2), owner: 'c', fence: 11, start: 1_000, end: 2_000, endKind: 'released' });
    const { violations, metrics } = checkLimit(data, LIMIT);
    expect(metrics.maxConcurrentValid).toBe(3);
    expect(violations.map((v) => v.invariant)).toEqual(['kind-limit']);
    expect(violations[0]?.message).toMatch(
      /^3 handlers of limited ran under valid permits at .*limit 2: task 1 /,
    );
  });

  it('counts a handler for as long as its permit stayed valid at the server', () => {
    // Task 3's permit never expired: it overlaps tasks 4 and 5.
    const data = cleanRun();
    const held = data.leases.find((l) => l.fence === 7);
    if (held) Object.assign(held, { end: undefined, endKind: 'held' });
    const { violations } = checkLimit(data, LIMIT);
    expect(violations.map((v) => v.message)).toEqual([expect.stringMatching(/^3 handlers of limited/)]);
  });

  it('catches a handler of the kind without a permit, and one under a permit the server never granted', () => {
    const data = cleanRun();
    Object.assign(data.executions[0] ?? {}, { permitKey: null, permitFence: null });
    Object.assign(data.executions[1] ?? {}, { permitFence: 66 });
    const { violations, metrics } = checkLimit(data, LIMIT);
    expect(metrics.withoutPermit).toBe(1);
    expect(violations.map((v) => v.message)).toEqual([
      'task 1 (fence 101, a) ran without a permit of limited',
      'task 2 (b) ran under permit limit/limited/slot/1 fence 66, which the lock server never granted',
    ]);
  });

  it('maps a permit to a Consul lease by index range when the holder rewrote its entry', () => {
    const data = cleanRun();
    Object.assign(data.executions[1] ?? {}, { permitFence: 6 });
    const rewritten = data.leases.find((l) => l.fence === 6);
    if (rewritten) rewritten.fence = 4;
    expect(checkLimit(data, LIMIT).violations.map((v) => v.invariant)).toEqual(['kind-limit']);
    expect(checkLimit({ ...data, exactFences: false }, LIMIT).violations).toEqual([]);
  });

  it("counts a handler with no recorded end (a killed worker's) until its permit's end", () => {
    const data = cleanRun();
    Object.assign(data.executions[0] ?? {}, { endedAt: null });
    const { violations, metrics } = checkLimit(data, LIMIT);
    expect(violations).toEqual([]);
    expect(metrics).toMatchObject({ maxConcurrentValid: 2, maxConcurrentRaw: 3 });
  });

  it('maxOverlap: an end and a start at the same moment do not overlap', () => {
    expect(
      maxOverlap([
        { start: 0, end: 10 },
        { start: 10, end: 20 },
        { start: 5, end: 10 },
      ]).max,
    ).toBe(2);
  });
});
