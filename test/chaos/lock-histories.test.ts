import { describe, expect, it } from 'vitest';
import { checkRun } from './checker.mjs';
import { leasesFromEtcdEvents } from './etcd-lock-server.mjs';
import { leasesFromPgHistory } from './pg-lock-server.mjs';
import { leasesFromRedisCommands, parseMonitorLine } from './redis-lock-server.mjs';

// The lock histories of the etcd, Redis and PostgreSQL chaos runs: how each server's record becomes leases,
// and that a grant while the previous lease was still valid at the server reaches the checker as an overlap.

const overlaps = (leases: ReturnType<typeof leasesFromEtcdEvents>) =>
  checkRun({
    tasks: [],
    transitions: [],
    executions: [],
    effects: [],
    effectLog: [],
    leases,
  }).violations.filter((v) => v.invariant === 'lease-exclusive');

describe('redis MONITOR history', () => {
  it('parses a script command with escapes and the server time', () => {
    const command = parseMonitorLine('+1796573465.433968 [0 lua] "HSET" "k" "a" "x\\"y\\x41"');
    expect(command).toEqual({ at: 1796573465433.968, source: 'lua', args: ['HSET', 'k', 'a', 'x"yA'] });
    expect(parseMonitorLine('+OK')).toBeUndefined();
  });

  const grant = (at: number, owner: string, fence: number, exp: number) => ({
    at,
    args: [
      'HSET',
      'baton:lock:task/1',
      'owner',
      owner,
      'token',
      `t${fence}`,
      'fence',
      String(fence),
      'exp',
      String(exp),
    ],
  });

  it('renewals move the end, a release ends the lease, an empty restart ends every lease (lost)', () => {
    const leases = leasesFromRedisCommands(
      [
        grant(1_000, 'a', 10, 3_000),
        { at: 2_000, args: ['HSET', 'baton:lock:task/1', 'exp', '4000'] },
        { at: 2_500, args: ['DEL', 'baton:lock:task/1'] },
        grant(2_600, 'b', 11, 4_600),
        grant(5_100, 'c', 5_000_000, 7_100),
      ],
      [{ at: 5_000, empty: true }],
    );
    expect(leases.map((l) => [l.owner, l.end, l.endKind])).toEqual([
      ['a', 2_500, 'released'],
      ['b', 4_600, 'expired'],
      ['c', 7_100, 'expired'],
    ]);
    const lost = leasesFromRedisCommands([grant(1_000, 'a', 10, 3_000)], [{ at: 2_000, empty: true }]);
    expect(lost[0]).toMatchObject({ end: 2_000, endKind: 'lost' });
    expect(overlaps(leases)).toEqual([]);
  });

  it('a grant before the holder expired is an overlap', () => {
    const leases = leasesFromRedisCommands([grant(1_000, 'a', 10, 3_000), grant(2_000, 'b', 11, 4_000)]);
    expect(overlaps(leases)).toHaveLength(1);
  });
});

describe('etcd watch history', () => {
  const put = (rev: number, key: string, create: number, at: number) => ({
    rev,
    type: 'put' as const,
    key,
    createRevision: create,
    lease: 'L',
    at,
  });
  const del = (rev: number, key: string, at: number) => ({
    rev,
    type: 'delete' as const,
    key,
    createRevision: 0,
    lease: '0',
    at,
  });

  it('creates are grants (fence: create revision); a delete with its guard is a release, alone an expiry', () => {
    const leases = leasesFromEtcdEvents([
      put(5, 'baton/lock/task/1', 5, 100),
      put(6, 'baton/lock/task/1', 5, 110),
      del(7, 'baton/lock/task/1', 200),
      del(7, 'baton/delay/task/1', 200),
      put(8, 'baton/lock/task/1', 8, 300),
      del(9, 'baton/lock/task/1', 400),
    ]);
    expect(leases.map((l) => [l.fence, l.start, l.end, l.endKind])).toEqual([
      [5, 100, 200, 'released'],
      [8, 300, 400, 'expired'],
    ]);
  });
});

describe('postgres trigger history', () => {
  const lock = (
    id: number,
    op: string,
    oldS: string | null,
    oldF: number | null,
    newS: string | null,
    newF: number | null,
    at: number,
  ) => ({
    id,
    op,
    key: 'task/1',
    oldSession: oldS,
    oldFence: oldF,
    newSession: newS,
    newFence: newF,
    at,
  });
  const session = (id: number, sessionId: string, expiresAt: number, at: number) => ({
    id,
    op: 'update',
    sessionId,
    expiresAt,
    at,
  });

  it('a takeover ends the old lease at its session expiry; a release at the release', () => {
    const leases = leasesFromPgHistory(
      [
        lock(2, 'insert', null, null, 's1', 1, 100),
        lock(5, 'update', 's1', 1, 's2', 2, 4_000),
        lock(7, 'delete', 's2', 2, null, null, 4_500),
      ],
      [session(1, 's1', 2_100, 100), session(3, 's1', 3_000, 1_000), session(4, 's2', 5_000, 3_900)],
      10_000,
    );
    expect(leases.map((l) => [l.owner, l.end, l.endKind])).toEqual([
      ['s1', 3_000, 'expired'],
      ['s2', 4_500, 'released'],
    ]);
    expect(overlaps(leases)).toEqual([]);
  });

  it('a takeover while the old session was still alive is an overlap', () => {
    const leases = leasesFromPgHistory(
      [lock(2, 'insert', null, null, 's1', 1, 100), lock(5, 'update', 's1', 1, 's2', 2, 2_000)],
      [session(1, 's1', 3_000, 100)],
      10_000,
    );
    expect(overlaps(leases)).toHaveLength(1);
  });
});
