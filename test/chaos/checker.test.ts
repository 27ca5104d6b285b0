import { describe, expect, it } from 'vitest';
import { checkRun, leasesFromConsulHistory, leasesFromDynamoWrites } from './checker.mjs';

// The checker must catch every kind of broken run. Each test starts from a clean, hand-made history (three
// tasks: one done, one taken over from a paused worker whose late writes were rejected, one dead) and plants
// one fault in it.

type Data = Parameters<typeof checkRun>[0];

function cleanRun(): Data {
  let id = 0;
  const tr = (
    taskId: string,
    oldStatus: string | null,
    newStatus: string,
    oldFence: number | null,
    newFence: number,
    at: number,
  ) => ({
    id: ++id,
    taskId,
    oldStatus,
    newStatus,
    oldFence,
    newFence,
    at,
  });
  return {
    tasks: [
      { id: '1', status: 'done', attempts: 1, fence: 10, result: { fence: 10 }, lastError: null },
      { id: '2', status: 'done', attempts: 2, fence: 25, result: { fence: 25 }, lastError: null },
      { id: '3', status: 'dead', attempts: 1, fence: 30, result: null, lastError: 'TASK_INVALID: poison' },
    ],
    transitions: [
      tr('1', 'pending', 'running', null, 10, 1_000),
      tr('1', 'running', 'done', 10, 10, 1_200),
      tr('2', 'pending', 'running', null, 20, 1_000),
      tr('2', 'running', 'running', 20, 25, 3_000),
      tr('2', 'running', 'done', 25, 25, 3_200),
      tr('3', 'pending', 'running', null, 30, 1_000),
      tr('3', 'running', 'dead', 30, 30, 1_050),
    ],
    executions: [
      { taskId: '1', fence: 10, worker: 'a', startedAt: 1_010, endedAt: 1_150, outcome: 'effect-applied' },
      { taskId: '2', fence: 20, worker: 'a', startedAt: 1_010, endedAt: 3_600, outcome: 'effect-rejected' },
      { taskId: '2', fence: 25, worker: 'b', startedAt: 3_010, endedAt: 3_150, outcome: 'effect-applied' },
      { taskId: '3', fence: 30, worker: 'a', startedAt: 1_010, endedAt: 1_020, outcome: 'poison' },
    ],
    effects: [
      { taskId: '1', fence: 10 },
      { taskId: '2', fence: 25 },
    ],
    effectLog: [
      { taskId: '1', fence: 10, worker: 'a', applied: true, at: 1_100 },
      { taskId: '2', fence: 25, worker: 'b', applied: true, at: 3_100 },
      { taskId: '2', fence: 20, worker: 'a', applied: false, at: 3_500 },
    ],
    leases: [
      { key: 'task/1', owner: 'a', fence: 10, start: 900, end: 1_300, endKind: 'released' },
      { key: 'task/2', owner: 'a', fence: 20, start: 900, end: 2_500, endKind: 'invalidated' },
      { key: 'task/3', owner: 'a', fence: 30, start: 900, end: 1_100, endKind: 'released' },
      { key: 'task/2', owner: 'b', fence: 25, start: 2_900, end: 3_300, endKind: 'released' },
    ],
    workerLogs: { staleWrites: 1 },
  };
}

function invariantsOf(data: Data): string[] {
  return checkRun(data).violations.map((v) => v.invariant);
}

describe('chaos checker', () => {
  it('passes a clean run and counts what the fences did', () => {
    const { metrics, violations } = checkRun(cleanRun());
    expect(violations).toEqual([]);
    expect(metrics).toMatchObject({
      tasks: 3,
      done: 2,
      dead: 1,
      executions: 4,
      rawDuplicateExecutions: 1,
      appliedCompletions: 2,
      staleWritesRejected: 1,
      staleEffectsRejected: 1,
      supersededEffects: 0,
      leases: 4,
      takeovers: 1,
      lost: 0,
    });
  });

  it('catches a lost task and a dead task without its error', () => {
    const data = cleanRun();
    data.tasks[0] = { ...data.tasks[0]!, status: 'running' };
    data.tasks[2] = { ...data.tasks[2]!, lastError: null };
    const { violations, metrics } = checkRun(data);
    expect(metrics.lost).toBe(1);
    expect(violations.filter((v) => v.invariant === 'no-lost-task')).toHaveLength(2);
  });

  it('catches a completion applied twice (a stale worker completing without the fence)', () => {
    const data = cleanRun();
    // Worker a wakes up and writes `done` for task 2 under its old fence, after b completed it.
    data.transitions.push({
      id: 100,
      taskId: '2',
      oldStatus: 'running',
      newStatus: 'done',
      oldFence: 20,
      newFence: 20,
      at: 3_150,
    });
    expect(invariantsOf(data)).toContain('completion-once');
  });

  it('catches a completion that changed the fence, one out of a terminal state, and a foreign result', () => {
    const moved = cleanRun();
    moved.transitions[1] = { ...moved.transitions[1]!, oldFence: 9 };
    expect(invariantsOf(moved)).toContain('completion-once');

    const reopened = cleanRun();
    reopened.transitions.push({
      id: 100,
      taskId: '1',
      oldStatus: 'done',
      newStatus: 'failed',
      oldFence: 10,
      newFence: 10,
      at: 5_000,
    });
    expect(invariantsOf(reopened)).toContain('completion-once');

    const foreign = cleanRun();
    foreign.tasks[1] = { ...foreign.tasks[1]!, result: { fence: 20 } };
    expect(invariantsOf(foreign)).toEqual(['completion-once']);
  });

  it('catches an effect applied by a stale holder (a handler that skips the fence)', () => {
    const data = cleanRun();
    data.effectLog[2] = { ...data.effectLog[2]!, applied: true };
    const { violations, metrics } = checkRun(data);
    expect(violations.map((v) => v.invariant)).toEqual(['effect-once']);
    expect(violations[0]!.message).toMatch(/stale effect applied by a under fence 20/);
    expect(metrics.supersededEffects).toBe(1);
  });

  it('catches a done task whose effect was applied twice, or not by the completing claim', () => {
    const twice = cleanRun();
    twice.effectLog.push({ taskId: '1', fence: 10, worker: 'a', applied: true, at: 1_150 });
    expect(invariantsOf(twice)).toEqual(['effect-once']);

    const missing = cleanRun();
    missing.effectLog.splice(0, 1);
    missing.effects.splice(0, 1);
    expect(invariantsOf(missing)).toEqual(['effect-once', 'effect-once']);

    const overwritten = cleanRun();
    overwritten.effects[1] = { taskId: '2', fence: 20 };
    expect(invariantsOf(overwritten)).toEqual(['effect-once']);

    const unclaimed = cleanRun();
    unclaimed.effectLog.push({ taskId: '3', fence: 31, worker: 'c', applied: true, at: 1_040 });
    expect(invariantsOf(unclaimed)).toEqual(['effect-once']);
  });

  it('catches two leases on one key valid at the same moment', () => {
    const data = cleanRun();
    data.leases[3] = { ...data.leases[3]!, start: 2_400 };
    expect(invariantsOf(data)).toEqual(['lease-exclusive']);

    const stillHeld = cleanRun();
    stillHeld.leases[1] = { ...stillHeld.leases[1]!, end: undefined, endKind: 'held' };
    expect(invariantsOf(stillHeld)).toEqual(['lease-exclusive']);
  });

  it('catches a fence that decreases, a claim under an older fence and a claim under a fence never granted', () => {
    const decreasing = cleanRun();
    decreasing.leases[3] = { ...decreasing.leases[3]!, fence: 15 };
    expect(invariantsOf(decreasing)).toContain('fence-order');

    const olderClaim = cleanRun();
    olderClaim.transitions[3] = { ...olderClaim.transitions[3]!, newFence: 18 };
    expect(invariantsOf(olderClaim)).toContain('fence-order');

    const ungranted = cleanRun();
    ungranted.leases.splice(2, 1);
    expect(invariantsOf(ungranted)).toEqual(['fence-order']);

    const unfenced = cleanRun();
    unfenced.transitions[2] = { ...unfenced.transitions[2]!, oldFence: 20 };
    expect(checkRun(unfenced).violations).toEqual([
      { invariant: 'fence-order', message: 'task 2: went from pending to running under its old fence 20' },
    ]);
  });

  it('catches a worker given a clock skew that never said it ran on it', () => {
    const data = cleanRun();
    data.skewedWorkers = [
      { id: 'w1-1', skewMs: 3_600_000 },
      { id: 'w2-1', skewMs: -7_200_000 },
    ];
    data.workerLogs = { staleWrites: 1, skewAnnounced: new Set(['w1-1']), logged: new Set(['w1-1', 'w2-1']) };
    expect(checkRun(data).violations).toEqual([
      {
        invariant: 'skew-hook',
        message: 'worker w2-1 was started with a -7200000 ms clock skew but did not log it',
      },
    ]);
  });

  it('does not ask a skewed incarnation that was killed before it logged anything to have said so', () => {
    const data = cleanRun();
    data.skewedWorkers = [
      { id: 'w1-5', skewMs: -20_924_473 },
      { id: 'w2-1', skewMs: 3_600_000 },
    ];
    data.workerLogs = { staleWrites: 1, skewAnnounced: new Set(['w2-1']), logged: new Set(['w2-1']) };
    expect(invariantsOf(data)).toEqual([]);
    data.workerLogs.logged = new Set(['w1-5', 'w2-1']);
    expect(invariantsOf(data)).toEqual(['skew-hook']);
  });

  it('maps a claim to a Consul lease by index range when the holder rewrote its entry', () => {
    const data = cleanRun();
    data.exactFences = false;
    data.leases[0] = { ...data.leases[0]!, fence: 8 };
    expect(invariantsOf(data)).toEqual([]);
    data.leases[0] = { ...data.leases[0]!, fence: 11 };
    expect(invariantsOf(data)).toEqual(['fence-order']);
  });
});

describe('lease histories', () => {
  it('reads the Consul test server history', () => {
    const leases = leasesFromConsulHistory(
      [
        {
          key: 'baton/task/1',
          session: 's1',
          modifyIndex: 5,
          lockIndex: 1,
          acquiredAt: 10,
          endedAt: 20,
          end: 'released',
        },
        { key: 'baton/task/1', session: 's2', modifyIndex: 9, lockIndex: 2, acquiredAt: 30 },
        { key: 'other/x', session: 's2', modifyIndex: 11, lockIndex: 1, acquiredAt: 30 },
        // The holder's acquisition stamp, locked in the same txn: the backend's own key, not a lease.
        { key: 'baton/task/1/.since/s2', session: 's2', modifyIndex: 9, lockIndex: 1, acquiredAt: 30 },
        { key: 'baton/.since/s2', session: 's2', modifyIndex: 9, lockIndex: 1, acquiredAt: 30 },
      ],
      { prefix: 'baton/', toEpoch: (t: number) => t + 1_000 },
    );
    expect(leases).toEqual([
      { key: 'task/1', owner: 's1', fence: 5, start: 1_010, end: 1_020, endKind: 'released' },
      { key: 'task/1', owner: 's2', fence: 9, start: 1_030, end: undefined, endKind: 'held' },
    ]);
  });

  const item = (owner: string | undefined, rvn: string, fence: number) => ({
    owner,
    ownerName: owner,
    rvn,
    fence,
    leaseMs: 1_000,
  });
  const free =
    'attribute_exists(#fence) AND attribute_not_exists(#owner) AND attribute_not_exists(#hold) AND #fence < #fenceMax';
  const owned = '#owner = :owner AND #rvn IN (:v0)';
  const takeover = '#rvn = :seen AND #fence < #fenceMax';
  const write = (
    seq: number,
    state: ReturnType<typeof item> | null,
    condition: string,
    at: number,
    seen?: string,
  ) => ({
    seq,
    key: 'lock:task/7',
    condition,
    seen,
    state,
    arrivedAt: at,
    forwardedAt: at + 1,
    doneAt: at + 2,
  });

  it('derives DynamoDB leases: a grant, heartbeats, a release, a grant, a legal takeover', () => {
    const { leases, grantViolations } = leasesFromDynamoWrites([
      write(1, item('a', 'r1', 1), 'attribute_not_exists(#pk)', 0),
      write(2, item('a', 'r2', 1), owned, 300),
      write(3, item(undefined, 'r3', 1), owned, 600),
      write(4, item('b', 'r4', 2), free, 700),
      write(5, item('b', 'r5', 2), owned, 1_000),
      write(6, item('c', 'r6', 3), takeover, 2_200, 'r5'),
    ]);
    expect(grantViolations).toEqual([]);
    expect(leases).toEqual([
      { key: 'task/7', owner: 'a (a)', fence: 1, start: 1, end: 602, endKind: 'released' },
      { key: 'task/7', owner: 'b (b)', fence: 2, start: 701, end: 2_000, endKind: 'expired' },
      { key: 'task/7', owner: 'c (c)', fence: 3, start: 2_201, end: undefined, endKind: 'held' },
    ]);
  });

  it('flags a DynamoDB takeover before the lease could have run out, or without a version condition', () => {
    const early = leasesFromDynamoWrites([
      write(1, item('a', 'r1', 1), 'attribute_not_exists(#pk)', 0),
      write(2, item('a', 'r2', 1), owned, 500),
      write(3, item('b', 'r3', 2), takeover, 1_200, 'r2'),
    ]);
    expect(early.grantViolations).toHaveLength(1);
    expect(early.grantViolations[0]!.message).toMatch(/before its 1000 ms lease could have run out/);

    const unconditioned = leasesFromDynamoWrites([
      write(1, item('a', 'r1', 1), 'attribute_not_exists(#pk)', 0),
      write(2, item('b', 'r2', 2), free, 5_000),
    ]);
    expect(unconditioned.grantViolations).toHaveLength(1);
    expect(unconditioned.grantViolations[0]!.message).toMatch(/without a condition on its record version/);

    const staleVersion = leasesFromDynamoWrites([
      write(1, item('a', 'r1', 1), 'attribute_not_exists(#pk)', 0),
      write(2, item('a', 'r2', 1), owned, 500),
      write(3, item('b', 'r3', 2), takeover, 5_000, 'r1'),
    ]);
    expect(staleVersion.grantViolations).toHaveLength(1);
  });
});

// Bucket mode: the same invariants, with buckets leased instead of tasks. Four buckets of one table ('s');
// task fences are claim tokens; the source's lease record of each bucket is written by every claim (in its
// own transaction), in one id sequence with the transitions.
//
// - task 1 (bucket 0): claimed by a under its lease of bucket 0 (lock fence 100), completed;
// - task 2 (bucket 1): claimed by a (lock fence 101); a pauses, its lease expires; b takes bucket 1 (lock
//   fence 110), takes task 2 over and completes it; a's late effect is rejected;
// - task 3 (bucket 2): poison, dead at once;
// - task 4 (bucket 0): fails its first attempt and is claimed again inside the same lease, with a new token.
function cleanBucketRun(): Data {
  const tr = (
    id: number,
    taskId: string,
    oldStatus: string | null,
    newStatus: string,
    oldFence: number | null,
    newFence: number,
    workerId: string,
    shard: number,
    txid: string,
    at: number,
  ) => ({ id, taskId, oldStatus, newStatus, oldFence, newFence, workerId, shard, txid, at });
  const rec = (
    id: number,
    bucket: number,
    lockFence: number,
    sinceToken: number,
    workerId: string,
    txid: string,
    at: number,
  ) => ({ id, epoch: 2, bucket, lockFence, sinceToken, workerId, txid, at });
  return {
    layout: { mode: 'bucket', buckets: 4, epoch: 2 },
    namespace: 's',
    tasks: [
      { id: '1', status: 'done', attempts: 1, fence: 6, result: { fence: 6 }, lastError: null, shard: 10 },
      { id: '2', status: 'done', attempts: 2, fence: 10, result: { fence: 10 }, lastError: null, shard: 300 },
      { id: '3', status: 'dead', attempts: 1, fence: 12, result: null, lastError: 'poison', shard: 600 },
      { id: '4', status: 'done', attempts: 2, fence: 14, result: { fence: 14 }, lastError: 'x', shard: 20 },
    ],
    bucketLeases: [
      rec(1, 0, 100, 5, 'a', 't1', 1_000),
      rec(4, 1, 101, 7, 'a', 't3', 1_000),
      rec(6, 1, 110, 9, 'b', 't4', 3_000),
      rec(9, 2, 102, 11, 'a', 't6', 1_000),
      rec(12, 0, 100, 5, 'a', 't8', 1_300),
      rec(15, 0, 100, 5, 'a', 't10', 1_600),
    ],
    transitions: [
      tr(2, '1', 'pending', 'running', null, 6, 'a', 10, 't1', 1_000),
      tr(3, '1', 'running', 'done', 6, 6, 'a', 10, 't2', 1_200),
      tr(5, '2', 'pending', 'running', null, 8, 'a', 300, 't3', 1_000),
      tr(7, '2', 'running', 'running', 8, 10, 'b', 300, 't4', 3_000),
      tr(8, '2', 'running', 'done', 10, 10, 'b', 300, 't5', 3_200),
      tr(10, '3', 'pending', 'running', null, 12, 'a', 600, 't6', 1_000),
      tr(11, '3', 'running', 'dead', 12, 12, 'a', 600, 't7', 1_050),
      tr(13, '4', 'pending', 'running', null, 13, 'a', 20, 't8', 1_300),
      tr(14, '4', 'running', 'failed', 13, 13, 'a', 20, 't9', 1_400),
      tr(16, '4', 'failed', 'running', 13, 14, 'a', 20, 't10', 1_600),
      tr(17, '4', 'running', 'done', 14, 14, 'a', 20, 't11', 1_700),
    ],
    executions: [
      { taskId: '1', fence: 6, worker: 'a', startedAt: 1_010, endedAt: 1_150, outcome: 'effect-applied' },
      { taskId: '2', fence: 8, worker: 'a', startedAt: 1_010, endedAt: 3_600, outcome: 'effect-rejected' },
      { taskId: '2', fence: 10, worker: 'b', startedAt: 3_010, endedAt: 3_150, outcome: 'effect-applied' },
      { taskId: '3', fence: 12, worker: 'a', startedAt: 1_010, endedAt: 1_020, outcome: 'poison' },
      { taskId: '4', fence: 13, worker: 'a', startedAt: 1_310, endedAt: 1_390, outcome: 'failed' },
      { taskId: '4', fence: 14, worker: 'a', startedAt: 1_610, endedAt: 1_690, outcome: 'effect-applied' },
    ],
    effects: [
      { taskId: '1', fence: 6 },
      { taskId: '2', fence: 10 },
      { taskId: '4', fence: 14 },
    ],
    effectLog: [
      { taskId: '1', fence: 6, worker: 'a', applied: true, at: 1_100 },
      { taskId: '2', fence: 10, worker: 'b', applied: true, at: 3_100 },
      { taskId: '2', fence: 8, worker: 'a', applied: false, at: 3_500 },
      { taskId: '4', fence: 14, worker: 'a', applied: true, at: 1_650 },
    ],
    leases: [
      { key: 'buckets/s/4/m/a', owner: 'a', fence: 90, start: 800, end: 4_000, endKind: 'released' },
      { key: 'buckets/s/4/m/b', owner: 'b', fence: 91, start: 800, end: 4_000, endKind: 'released' },
      { key: 'buckets/s/4/b/0', owner: 'a', fence: 100, start: 900, end: 4_000, endKind: 'released' },
      { key: 'buckets/s/4/b/1', owner: 'a', fence: 101, start: 900, end: 2_500, endKind: 'invalidated' },
      { key: 'buckets/s/4/b/2', owner: 'a', fence: 102, start: 900, end: 4_000, endKind: 'released' },
      { key: 'buckets/s/4/b/1', owner: 'b', fence: 110, start: 2_900, end: 4_000, endKind: 'released' },
    ],
    workerLogs: { staleWrites: 1 },
  } as Data;
}

describe('chaos checker, bucket mode', () => {
  it('passes a clean run, with no per-task lock in sight, and counts what the bucket leases did', () => {
    const { metrics, violations } = checkRun(cleanBucketRun());
    expect(violations).toEqual([]);
    expect(metrics).toMatchObject({
      tasks: 4,
      done: 3,
      dead: 1,
      appliedCompletions: 3,
      rawDuplicateExecutions: 1,
      staleEffectsRejected: 1,
      takeovers: 1,
      lost: 0,
      bucketLeaseRecords: 6,
      bucketLeaseChanges: 4,
      settles: 5,
    });
  });

  it('judges claims by the mode: bucket claims checked as per-task claims have no granted fence', () => {
    const data = cleanBucketRun();
    delete data.layout;
    expect(new Set(invariantsOf(data))).toEqual(new Set(['fence-order']));
  });

  it('catches two workers holding one bucket at once (the lock server history)', () => {
    const data = cleanBucketRun();
    // b granted bucket 1 while a's lease was still valid.
    data.leases[5] = { ...data.leases[5]!, start: 2_400 };
    expect(invariantsOf(data)).toEqual(['lease-exclusive']);

    const members = cleanBucketRun();
    members.leases.push({
      key: 'buckets/s/4/m/a',
      owner: 'c',
      fence: 95,
      start: 3_000,
      end: 4_000,
      endKind: 'released',
    });
    expect(invariantsOf(members)).toEqual(['lease-exclusive']);
  });

  it('catches an illegal DynamoDB takeover of a bucket', () => {
    const item = (owner: string, rvn: string, fence: number) => ({
      owner,
      ownerName: owner,
      rvn,
      fence,
      leaseMs: 1_000,
    });
    const write = (
      seq: number,
      state: ReturnType<typeof item>,
      condition: string,
      at: number,
      seen?: string,
    ) => ({
      seq,
      key: 'lock:buckets/s/4/b/1',
      condition,
      seen,
      state,
      arrivedAt: at,
      forwardedAt: at + 1,
      doneAt: at + 2,
    });
    const { leases, grantViolations } = leasesFromDynamoWrites([
      write(1, item('a', 'r1', 101), 'attribute_not_exists(#pk)', 0),
      write(2, item('a', 'r2', 101), '#owner = :owner AND #rvn IN (:v0)', 500),
      write(3, item('b', 'r3', 110), '#rvn = :seen AND #fence < #fenceMax', 1_200, 'r2'),
    ]);
    expect(leases.map((l) => l.key)).toEqual(['buckets/s/4/b/1', 'buckets/s/4/b/1']);
    expect(grantViolations).toHaveLength(1);
    expect(grantViolations[0]!.message).toMatch(
      /buckets\/s\/4\/b\/1: b took the lease of a .*before its 1000 ms lease could have run out/,
    );
  });

  it('catches a bucket lock fence in the source that the lock server never granted for that bucket', () => {
    const data = cleanBucketRun();
    // b's claim recorded a fence the server granted for bucket 0, not bucket 1.
    data.bucketLeases![2] = { ...data.bucketLeases![2]!, lockFence: 100 };
    const found = checkRun(data).violations.filter((v) => v.invariant === 'fence-order');
    expect(found).toHaveLength(1);
    expect(found[0]!.message).toMatch(/buckets\/s\/4\/b\/1: the source recorded lock fence 100/);
  });

  it('catches an older lease writing after a newer one (a claim under a stale bucket fence)', () => {
    const data = cleanBucketRun();
    // a, back from its pause, claims in bucket 1 under its old lock fence after b's claim raised it.
    data.bucketLeases!.push({
      id: 7.5,
      epoch: 2,
      bucket: 1,
      lockFence: 101,
      sinceToken: 7,
      workerId: 'a',
      txid: 'late',
      at: 3_050,
    });
    const found = checkRun(data).violations;
    expect(new Set(found.map((v) => v.invariant))).toEqual(new Set(['bucket-fence']));
    expect(found[0]!.message).toMatch(/lock fence 101 \(worker a\) recorded after 110 \(worker b\)/);
  });

  it('catches a settle applied after a newer lease took the bucket', () => {
    const data = cleanBucketRun();
    // a, back from its pause, gives task 2 back (a settle: release) after b's claim statement recorded its
    // lease, but before b reached task 2: the settle ignored the bucket's lock fence.
    data.transitions.push({
      id: 6.5,
      taskId: '2',
      oldStatus: 'running',
      newStatus: 'pending',
      oldFence: 8,
      newFence: 8,
      workerId: 'a',
      shard: 300,
      txid: 'late',
      at: 3_000,
    } as Data['transitions'][number]);
    data.transitions[3] = { ...data.transitions[3]!, oldStatus: 'pending' };
    const found = checkRun(data).violations;
    expect(found.map((v) => v.invariant)).toEqual(['bucket-fence']);
    expect(found[0]!.message).toMatch(
      /task 2: settled \(pending\) under token 8 of the lease with lock fence 101 \(a\) while bucket 1's newest lock fence was 110 \(b\)/,
    );
  });

  it("catches a claim that did not go through its bucket lease record, or under another worker's", () => {
    const bypass = cleanBucketRun();
    bypass.transitions[3] = { ...bypass.transitions[3]!, txid: 'elsewhere' };
    expect(invariantsOf(bypass)).toEqual(['bucket-fence']);

    const foreign = cleanBucketRun();
    foreign.transitions[3] = { ...foreign.transitions[3]!, workerId: 'c' };
    expect(invariantsOf(foreign)).toEqual(['bucket-fence']);
  });

  it('catches a lease whose first token is not above the tokens drawn before it, and a claim below it', () => {
    const reused = cleanBucketRun();
    // b's lease starts at token 7, below task 2's token 8 of a's lease: a's claim would pass as b's.
    reused.bucketLeases![2] = { ...reused.bucketLeases![2]!, sinceToken: 7 };
    expect(invariantsOf(reused)).toEqual(['bucket-fence']);

    const below = cleanBucketRun();
    below.bucketLeases![2] = { ...below.bucketLeases![2]!, sinceToken: 11 };
    const found = checkRun(below).violations;
    expect(found.map((v) => v.invariant)).toEqual(['bucket-fence']);
    expect(found[0]!.message).toMatch(/task 2: claimed under token 10, below the first token 11/);
  });

  it('catches a claim token that does not rise, a stale completion and a stale effect, as in task mode', () => {
    const reusedToken = cleanBucketRun();
    reusedToken.transitions[9] = { ...reusedToken.transitions[9]!, newFence: 13 };
    expect(invariantsOf(reusedToken)).toContain('fence-order');

    const lower = cleanBucketRun();
    lower.transitions[3] = { ...lower.transitions[3]!, newFence: 7 };
    expect(invariantsOf(lower)).toContain('fence-order');

    const staleDone = cleanBucketRun();
    staleDone.transitions.push({
      id: 9,
      taskId: '2',
      oldStatus: 'running',
      newStatus: 'done',
      oldFence: 8,
      newFence: 8,
      workerId: 'a',
      shard: 300,
      txid: 'late',
      at: 3_150,
    } as Data['transitions'][number]);
    expect(new Set(invariantsOf(staleDone))).toEqual(new Set(['completion-once', 'bucket-fence']));

    const staleEffect = cleanBucketRun();
    staleEffect.effectLog[2] = { ...staleEffect.effectLog[2]!, applied: true };
    expect(invariantsOf(staleEffect)).toEqual(['effect-once']);
  });
});
