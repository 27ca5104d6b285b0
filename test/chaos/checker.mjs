// The chaos checker: pure functions from what a run recorded (the database's tables, the lock server's
// history, the workers' logs) to metrics and invariant violations. No I/O, so tests feed it crafted
// histories with planted faults. Both lease modes: per task (`task/<id>` locks, fences from the lock server)
// and per bucket (bucket locks, claim tokens as the tasks' fences; see bucket-checks.mjs).

import { checkBuckets } from './bucket-checks.mjs';
import { checkLimit } from './limit-checks.mjs';

/** The invariants, in the order the report lists them. */
export const INVARIANTS = {
  'no-lost-task': 'every task ends done, or dead with its error',
  'completion-once': "every task's completion applied exactly once, by its current claim",
  'effect-once': 'fenced effects applied exactly once per task, never by a stale holder',
  'lease-exclusive': 'no two leases on one key valid at the server at the same moment',
  'fence-order':
    "fences per key strictly increase in grant order; per task, claims' fences rise; every claim carries a granted fence (bucket mode: its bucket's recorded lock fence was granted)",
  'bucket-fence':
    "bucket mode: a bucket's lock fence in the source never decreases; every claim and every settle ran under the bucket's newest lease",
  'skew-hook': 'every worker started with a skewed wall clock said so (the skew was applied)',
  'kind-limit':
    'with --limit kind=n: every handler of the kind ran under a granted permit, and at no moment more than n ran under permits valid at the lock server',
};

/**
 * @typedef {object} TaskRow
 * @property {string} id
 * @property {number} [shard]
 * @property {string} status
 * @property {number} attempts
 * @property {number | null} fence
 * @property {unknown} result
 * @property {string | null} lastError
 *
 * @typedef {object} Transition a change of a task's status or fence, recorded by a trigger
 * @property {number} id
 * @property {string} taskId
 * @property {string | null} oldStatus
 * @property {string} newStatus
 * @property {number | null} oldFence
 * @property {number | null} newFence
 * @property {string | null} [workerId] the task's worker after the change (a claim sets it)
 * @property {number} [shard] the task's shard (bucket mode: which bucket it belongs to)
 * @property {string} [txid] the transaction that made the change
 * @property {number} at epoch ms (database clock)
 *
 * @typedef {object} Execution
 * @property {string} taskId
 * @property {number} fence
 * @property {string} worker
 * @property {number} startedAt epoch ms (database clock)
 * @property {number | null} endedAt
 * @property {string | null} outcome
 *
 * @typedef {object} EffectAttempt
 * @property {string} taskId
 * @property {number} fence
 * @property {string} worker
 * @property {boolean} applied
 * @property {number} at epoch ms (database clock)
 *
 * @typedef {object} Effect
 * @property {string} taskId
 * @property {number} fence
 *
 * @typedef {object} Lease a lease as the lock server saw it
 * @property {string} key lock key without the backend's prefix, e.g. `task/42`
 * @property {string} owner session (Consul) or owner id (DynamoDB)
 * @property {number} fence
 * @property {number} start when it became valid at the server (epoch ms, lock-server clock)
 * @property {number | undefined} end when it stopped being valid (undefined: still valid at the end)
 * @property {string} endKind released | invalidated | expired | deleted | held
 *
 * @typedef {object} Violation
 * @property {keyof typeof INVARIANTS} invariant
 * @property {string} message
 *
 * @typedef {object} RunData
 * @property {TaskRow[]} tasks
 * @property {Transition[]} transitions
 * @property {Execution[]} executions
 * @property {Effect[]} effects
 * @property {EffectAttempt[]} effectLog
 * @property {Lease[]} leases in grant order
 * @property {import('./bucket-checks.mjs').LeaseLayout} [layout] the table's lease layout (default: task mode)
 * @property {import('./bucket-checks.mjs').BucketLeaseRecord[]} [bucketLeases] bucket mode: every write of a
 *   bucket's lease record in the source, in one id sequence with the transitions
 * @property {string} [namespace] bucket mode: the task table's name in bucket lock keys (the schema)
 * @property {Violation[]} [grantViolations] found while deriving the leases (DynamoDB grant legality)
 * @property {boolean} [exactFences] every claim's fence must equal a grant's fence (DynamoDB) rather than fall
 *   within a lease's range of indexes (Consul, where a holder's retried acquire rewrites the entry)
 * @property {{ staleWrites?: number, skewAnnounced?: Set<string>, logged?: Set<string> }} [workerLogs]
 *   `logged`: incarnations that wrote at least one log line (the worker logs synchronously, so one that wrote
 *   none never got as far as starting the worker)
 * @property {Array<{ id: string, skewMs: number }>} [skewedWorkers] worker incarnations started with a skew
 * @property {import('./limit-checks.mjs').LimitSpec} [limit] the per-kind limit the run was meant to keep (tasks
 *   then carry `kind`, executions `permitKey` and `permitFence`)
 */

const TERMINAL = new Set(['done', 'dead']);

function groupBy(items, key) {
  const groups = new Map();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

const byTime = (a, b) => a.at - b.at || a.id - b.id;

/** A claim: the transition that gave the task a new fence. */
function isClaim(t) {
  return t.newFence !== null && t.newFence !== t.oldFence;
}

/**
 * Per task, the tenure of each fence: from its claim until the task's next transition (completion, failure,
 * burial or a newer claim). `end` is undefined while the claim is still the task's latest.
 */
export function tenures(transitions) {
  const result = new Map();
  for (const [taskId, list] of groupBy(transitions, (t) => t.taskId)) {
    const sorted = [...list].sort(byTime);
    const map = new Map();
    sorted.forEach((t, i) => {
      if (!isClaim(t)) return;
      const next = sorted[i + 1];
      map.set(t.newFence, { start: t.at, end: next?.at, status: t.newStatus });
    });
    result.set(taskId, map);
  }
  return result;
}

/**
 * Checks a run. Returns the metrics of the report and every invariant violation found.
 * @param {RunData} data
 */
export function checkRun(data) {
  /** @type {Violation[]} */
  const violations = [...(data.grantViolations ?? [])];
  const fail = (invariant, message) => violations.push({ invariant, message });
  const transitionsByTask = groupBy(data.transitions, (t) => t.taskId);
  const tenureByTask = tenures(data.transitions);
  const appliedByTask = groupBy(
    data.effectLog.filter((e) => e.applied),
    (e) => e.taskId,
  );
  const effectByTask = new Map(data.effects.map((e) => [e.taskId, e]));

  // 1. No task lost.
  let lost = 0;
  for (const task of data.tasks) {
    if (!TERMINAL.has(task.status)) {
      lost++;
      fail(
        'no-lost-task',
        `task ${task.id} ended ${task.status} (attempts ${task.attempts}, fence ${task.fence})`,
      );
    } else if (task.status === 'dead' && !task.lastError) {
      fail('no-lost-task', `task ${task.id} is dead without an error`);
    }
  }

  // 2. Completion applied exactly once, by the current claim.
  let appliedCompletions = 0;
  for (const task of data.tasks) {
    const list = [...(transitionsByTask.get(task.id) ?? [])].sort(byTime);
    const completions = list.filter((t) => t.newStatus === 'done' && t.oldStatus !== 'done');
    appliedCompletions += completions.length;
    const expected = task.status === 'done' ? 1 : 0;
    if (completions.length !== expected) {
      fail(
        'completion-once',
        `task ${task.id} (${task.status}) has ${completions.length} applied completions, expected ${expected}`,
      );
    }
    for (const t of list) {
      if (t.oldStatus !== null && TERMINAL.has(t.oldStatus)) {
        fail(
          'completion-once',
          `task ${task.id} left ${t.oldStatus} for ${t.newStatus} (fence ${t.oldFence} -> ${t.newFence})`,
        );
      }
    }
    for (const t of completions) {
      if (t.oldStatus !== 'running' || t.oldFence !== t.newFence) {
        fail(
          'completion-once',
          `task ${task.id} was completed from ${t.oldStatus} with fence ${t.oldFence} -> ${t.newFence}, not by its running claim`,
        );
      }
    }
    if (task.status === 'done') {
      const resultFence = task.result && typeof task.result === 'object' ? task.result.fence : undefined;
      if (resultFence !== task.fence) {
        fail(
          'completion-once',
          `task ${task.id} is done under fence ${task.fence} but its result was produced under fence ${resultFence}`,
        );
      }
    }
  }

  // 3. Fenced effects: never outside the fence's claim; the completing claim's effect applied exactly once.
  let effectsApplied = 0;
  let supersededEffects = 0;
  const finalFence = new Map(data.tasks.map((t) => [t.id, t]));
  for (const attempt of data.effectLog) {
    if (!attempt.applied) continue;
    effectsApplied++;
    const task = finalFence.get(attempt.taskId);
    if (!(task?.status === 'done' && task.fence === attempt.fence)) supersededEffects++;
    const tenure = tenureByTask.get(attempt.taskId)?.get(attempt.fence);
    if (!tenure) {
      fail(
        'effect-once',
        `task ${attempt.taskId}: effect applied by ${attempt.worker} under fence ${attempt.fence}, which never claimed it`,
      );
    } else if (
      tenure.status !== 'running' ||
      attempt.at < tenure.start ||
      (tenure.end !== undefined && attempt.at >= tenure.end)
    ) {
      fail(
        'effect-once',
        `task ${attempt.taskId}: stale effect applied by ${attempt.worker} under fence ${attempt.fence} at ` +
          `${iso(attempt.at)}, outside that claim (${iso(tenure.start)} .. ${tenure.end === undefined ? 'end' : iso(tenure.end)})`,
      );
    }
  }
  for (const task of data.tasks) {
    if (task.status !== 'done') continue;
    const mine = (appliedByTask.get(task.id) ?? []).filter((e) => e.fence === task.fence);
    if (mine.length !== 1) {
      fail(
        'effect-once',
        `task ${task.id}: the completing claim (fence ${task.fence}) applied its effect ${mine.length} times, expected 1`,
      );
    }
    const standing = effectByTask.get(task.id);
    if (standing?.fence !== task.fence) {
      fail(
        'effect-once',
        `task ${task.id}: the effect that stands is fence ${standing?.fence ?? 'none'}'s, but fence ${task.fence} completed it`,
      );
    }
  }

  // 4. Lease exclusivity at the server.
  const leasesByKey = groupBy(data.leases, (l) => l.key);
  let takeovers = 0;
  for (const [key, list] of leasesByKey) {
    const sorted = [...list].sort((a, b) => a.start - b.start || a.fence - b.fence);
    for (let i = 1; i < sorted.length; i++) {
      const before = sorted[i - 1];
      const after = sorted[i];
      if (before.end === undefined || before.end > after.start) {
        fail(
          'lease-exclusive',
          `${key}: lease of ${after.owner} (fence ${after.fence}) granted at ${iso(after.start)} while the lease of ` +
            `${before.owner} (fence ${before.fence}) was valid until ${before.end === undefined ? 'the end' : iso(before.end)}`,
        );
      }
    }
    for (const lease of list) if (lease.endKind !== 'released' && lease.endKind !== 'held') takeovers++;
  }

  // 5. Fences: strictly increasing per key in grant order; every claim carries a granted fence.
  for (const [key, list] of leasesByKey) {
    for (let i = 1; i < list.length; i++) {
      if (!(list[i].fence > list[i - 1].fence)) {
        fail(
          'fence-order',
          `${key}: fence ${list[i].fence} granted after fence ${list[i - 1].fence} (to ${list[i].owner} after ${list[i - 1].owner})`,
        );
      }
    }
  }
  const grantedFences = new Map();
  const granted = (key, fence) => {
    let fences = grantedFences.get(key);
    if (!fences) {
      fences = (leasesByKey.get(key) ?? []).map((l) => l.fence).sort((a, b) => a - b);
      grantedFences.set(key, fences);
    }
    return data.exactFences === false
      ? fences.some((f, i) => f <= fence && (fences[i + 1] === undefined || fence < fences[i + 1]))
      : fences.includes(fence);
  };
  const bucketMode = data.layout?.mode === 'bucket';
  for (const [taskId, list] of transitionsByTask) {
    for (const t of list) {
      if (t.newStatus === 'running' && t.oldStatus !== 'running' && !isClaim(t)) {
        fail(
          'fence-order',
          `task ${taskId}: went from ${t.oldStatus} to running under its old fence ${t.newFence}`,
        );
      }
    }
    const claims = [...list].sort(byTime).filter(isClaim);
    for (let i = 1; i < claims.length; i++) {
      if (!(claims[i].newFence > claims[i - 1].newFence)) {
        fail(
          'fence-order',
          `task ${taskId}: claimed under fence ${claims[i].newFence} after fence ${claims[i - 1].newFence}`,
        );
      }
    }
    // Bucket mode: a task's fence is a claim token; its lock fence is checked per bucket (below).
    if (bucketMode) continue;
    for (const claim of claims) {
      if (!granted(`task/${taskId}`, claim.newFence))
        fail(
          'fence-order',
          `task ${taskId}: claimed under fence ${claim.newFence}, which the lock server never granted`,
        );
    }
  }
  const bucketMetrics = bucketMode
    ? checkBuckets(
        {
          transitions: data.transitions,
          bucketLeases: data.bucketLeases ?? [],
          layout: data.layout,
          namespace: data.namespace,
        },
        fail,
        granted,
      )
    : undefined;

  for (const { id, skewMs } of data.skewedWorkers ?? []) {
    // An incarnation killed before it logged anything never ran the worker: the skew never applied to anything.
    const started = data.workerLogs?.logged?.has(id) ?? true;
    if (started && !data.workerLogs?.skewAnnounced?.has(id)) {
      fail('skew-hook', `worker ${id} was started with a ${skewMs} ms clock skew but did not log it`);
    }
  }

  const limit = data.limit ? checkLimit(data, data.limit) : undefined;
  if (limit) violations.push(...limit.violations);

  const executions = data.executions.length;
  const metrics = {
    tasks: data.tasks.length,
    done: data.tasks.filter((t) => t.status === 'done').length,
    dead: data.tasks.filter((t) => t.status === 'dead').length,
    executions,
    rawDuplicateExecutions: rawDuplicates(data, tenureByTask),
    appliedCompletions,
    staleWritesRejected: data.workerLogs?.staleWrites ?? 0,
    effectsApplied,
    staleEffectsRejected: data.effectLog.filter((e) => !e.applied).length,
    supersededEffects,
    leases: data.leases.length,
    takeovers,
    lost,
    violations: violations.length,
    ...bucketMetrics,
    ...(limit ? { limit: limit.metrics } : {}),
  };
  return { metrics, violations };
}

/**
 * Executions that repeated work: started while another execution of the same task was still running (its
 * end, or for a killed worker the end of its claim), or after another execution had already applied the
 * task's effect.
 */
function rawDuplicates(data, tenureByTask) {
  const applied = groupBy(
    data.effectLog.filter((e) => e.applied),
    (e) => e.taskId,
  );
  let duplicates = 0;
  for (const [taskId, list] of groupBy(data.executions, (e) => e.taskId)) {
    const tenure = tenureByTask.get(taskId);
    const sorted = [...list].sort((a, b) => a.startedAt - b.startedAt);
    const ends = sorted.map((e) => e.endedAt ?? tenure?.get(e.fence)?.end ?? Number.POSITIVE_INFINITY);
    sorted.forEach((execution, i) => {
      const overlaps = sorted.slice(0, i).some((_, j) => ends[j] > execution.startedAt);
      const afterEffect = (applied.get(taskId) ?? []).some(
        (e) => e.fence !== execution.fence && e.at < execution.startedAt,
      );
      if (overlaps || afterEffect) duplicates++;
    });
  }
  return duplicates;
}

function iso(ms) {
  return new Date(ms).toISOString();
}

/** A segment starting with `.` is the backend's own (a holder's `.since` stamp, a waiter's `.wait` place). */
const CONSUL_INTERNAL_SEGMENT = /(^|\/)\./;

/**
 * Leases from the Consul test server's history (`history()`), in commit order. `prefix` is the backend's
 * key prefix (`baton/`); times are converted from the server clock to epoch ms with `toEpoch`. Keys the
 * backend keeps for itself (a segment starting with `.`: no caller key encodes to one) are not leases of a
 * caller's key, even when a session locks them (the `.since` stamp is locked with the key it dates).
 */
export function leasesFromConsulHistory(history, { prefix = 'baton/', toEpoch = (t) => t } = {}) {
  return history
    .filter((r) => r.key.startsWith(prefix) && !CONSUL_INTERNAL_SEGMENT.test(r.key.slice(prefix.length)))
    .map((r) => ({
      key: r.key.slice(prefix.length),
      owner: r.session,
      fence: r.modifyIndex,
      start: toEpoch(r.acquiredAt),
      end: r.endedAt === undefined ? undefined : toEpoch(r.endedAt),
      // baton's release deletes the key while its session still holds it (check-session + delete).
      endKind: r.end === 'deleted' ? 'released' : (r.end ?? 'held'),
    }));
}

/**
 * Leases from the DynamoDB recorder's writes, and every grant that was not legal. A grant is legal when the
 * item was free (released, or new) or when the grant was conditioned on the record version the holder last
 * wrote and at least the holder's lease duration passed at the server since that write arrived: by then the
 * holder, which trusts its lease for that long after *sending* its last write, had stopped trusting it.
 * A lease taken over is valid at the server until that bound; a released one until its release applied.
 * @param {import('./dynamo-recorder.mjs').LockWrite[]} writes
 */
export function leasesFromDynamoWrites(writes, { toEpoch = (t) => t } = {}) {
  /** @type {Lease[]} */
  const leases = [];
  /** @type {Violation[]} */
  const grantViolations = [];
  const current = new Map();
  for (const write of [...writes].sort((a, b) => a.seq - b.seq)) {
    const key = write.key.replace(/^lock:/, '');
    const held = current.get(key);
    const state = write.state;
    if (!state?.owner) {
      if (held) {
        held.lease.end = toEpoch(write.doneAt);
        held.lease.endKind = 'released';
        current.delete(key);
      }
      continue;
    }
    if (held && held.owner === state.owner && held.lease.fence === state.fence) {
      held.rvn = state.rvn;
      held.lastWriteAt = write.arrivedAt;
      held.leaseMs = state.leaseMs;
      continue;
    }
    // A grant.
    if (held) {
      const quietMs = write.forwardedAt - held.lastWriteAt;
      if (write.seen !== held.rvn || !/#rvn = :seen/.test(write.condition)) {
        grantViolations.push({
          invariant: 'lease-exclusive',
          message: `${key}: ${state.owner} took the lease of ${held.lease.owner} (fence ${held.lease.fence}) without a condition on its record version (condition: ${write.condition})`,
        });
      } else if (quietMs < held.leaseMs) {
        grantViolations.push({
          invariant: 'lease-exclusive',
          message: `${key}: ${state.owner} took the lease of ${held.lease.owner} (fence ${held.lease.fence}) ${Math.round(quietMs)} ms after its last write, before its ${held.leaseMs} ms lease could have run out`,
        });
      }
      held.lease.end = toEpoch(held.lastWriteAt + held.leaseMs);
      held.lease.endKind = 'expired';
    }
    const lease = {
      key,
      owner: state.ownerName ? `${state.ownerName} (${state.owner})` : state.owner,
      fence: state.fence,
      start: toEpoch(write.forwardedAt),
      end: undefined,
      endKind: 'held',
    };
    leases.push(lease);
    current.set(key, {
      lease,
      owner: state.owner,
      rvn: state.rvn,
      lastWriteAt: write.arrivedAt,
      leaseMs: state.leaseMs,
    });
  }
  return { leases, grantViolations };
}
