#!/usr/bin/env node
// node spec/trace-check.mjs <chaos run directory>... [--max-attempts N]
//
// Feeds what a chaos run recorded (test/chaos: the tasks table's transitions from its trigger, the effect log,
// the lock server's leases, the workers' JSON logs) through the transition rules of the model
// (spec/trace-rules.mjs) and reports every recorded step the model forbids. Exits 1 when there is one.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { effectApplies, explain, TERMINAL } from './trace-rules.mjs';

/**
 * @typedef {import('../test/chaos/checker.mjs').Transition} Transition
 * @typedef {import('../test/chaos/checker.mjs').EffectAttempt} EffectAttempt
 * @typedef {import('../test/chaos/checker.mjs').Lease} Lease
 *
 * @typedef {object} WorkerEvent one line of a worker's log that reports a protocol step
 * @property {string} worker
 * @property {string} msg
 * @property {string} taskId
 * @property {number} fence
 * @property {string} [operation]
 * @property {string} [reason]
 *
 * @typedef {object} Trace
 * @property {Array<{ id: string, status: string, attempts: number, fence: number | null }>} tasks final rows
 * @property {Transition[]} transitions
 * @property {EffectAttempt[]} effectLog
 * @property {Lease[]} leases in grant order
 * @property {WorkerEvent[]} workerEvents
 * @property {boolean} exactFences every claim's fence equals a granted fence (DynamoDB), rather than lying in
 *   a lease's range of indexes (Consul, where a retried acquisition rewrites the holder's own entry)
 * @property {number} maxAttempts max_attempts of every task
 *
 * @typedef {object} Finding
 * @property {'claim' | 'outcome' | 'continuity' | 'fences_rise' | 'effect_fenced' | 'reports_true' | 'finished'} rule
 *   `claim` / `outcome`: a recorded change of a task row that the model's claim / complete-or-fail step forbids;
 *   `continuity`: a change the recorded steps do not account for; the others: the model's property
 * @property {string} message
 */

/** Worker log messages the check reads (packages/cli/src/commands/worker.ts). */
export const WORKER_MESSAGES = {
  started: 'task started',
  completed: 'task completed',
  failed: 'task failed; will retry',
  dead: 'task dead',
  stale: 'stale write rejected (a newer fence exists)',
  claimSkipped: 'claim skipped',
};

const byId = (a, b) => a.id - b.id;

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

/**
 * Checks a recorded history against the model's rules.
 * @param {Trace} trace
 * @returns {{ steps: Record<string, number>, violations: Finding[], notes: Finding[] }}
 */
export function checkTrace(trace) {
  /** @type {Finding[]} */
  const violations = [];
  /** @type {Finding[]} */
  const notes = [];
  const steps = {};
  const count = (step) => {
    steps[step] = (steps[step] ?? 0) + 1;
  };
  const forbid = (rule, message) => violations.push({ rule, message });

  // The lock service: fences per key strictly rise in grant order (fences_rise).
  const leasesByKey = groupBy(trace.leases, (l) => l.key);
  for (const [key, list] of leasesByKey) {
    list.forEach((lease, i) => {
      count('grant');
      if (i > 0 && !(lease.fence > list[i - 1].fence)) {
        forbid('fences_rise', `${key}: fence ${lease.fence} granted after ${list[i - 1].fence}`);
      }
    });
  }
  const granted = (taskId, fence) => {
    const list = [...(leasesByKey.get(`task/${taskId}`) ?? [])].sort((a, b) => a.fence - b.fence);
    return trace.exactFences
      ? list.some((l) => l.fence === fence)
      : list.some((l, i) => l.fence <= fence && (list[i + 1] === undefined || fence < list[i + 1].fence));
  };

  // The task table: replay each task's recorded transitions through the model's steps.
  /** @type {Map<string, Array<{ step: string, transition: Transition }>>} */
  const stepsByTask = new Map();
  const finalById = new Map(trace.tasks.map((t) => [t.id, t]));
  const transitionsByTask = groupBy(trace.transitions, (t) => t.taskId);
  for (const task of trace.tasks) {
    let row = { status: 'pending', fence: /** @type {number | null} */ (null), attempts: 0 };
    const taken = [];
    for (const tr of [...(transitionsByTask.get(task.id) ?? [])].sort(byId)) {
      if (tr.oldStatus !== row.status || tr.oldFence !== row.fence) {
        forbid(
          'continuity',
          `task ${task.id}: transition ${tr.id} starts from ${tr.oldStatus}/${tr.oldFence}, but the replay is at ` +
            `${row.status}/${row.fence} (a change the model has no step for, or one the trigger missed)`,
        );
      }
      const options = explain(row, { status: tr.newStatus, fence: tr.newFence }, trace.maxAttempts);
      if (options.length === 0) {
        forbid(
          tr.newFence !== tr.oldFence || tr.newStatus === 'running' ? 'claim' : 'outcome',
          `task ${task.id}: ${row.status}/${row.fence} -> ${tr.newStatus}/${tr.newFence} (transition ${tr.id}, ` +
            `attempts ${row.attempts} of ${trace.maxAttempts}) is no step of the model`,
        );
        row = { status: tr.newStatus, fence: tr.newFence, attempts: row.attempts };
        continue;
      }
      const [{ step, row: next }] = options;
      if (step === 'claim' && !granted(task.id, tr.newFence)) {
        forbid(
          'fences_rise',
          `task ${task.id}: claimed under fence ${tr.newFence}, which the lock server never granted`,
        );
      }
      count(step === 'claim' && next.status === 'dead' ? 'claim (bury abandoned)' : step);
      taken.push({ step, transition: tr, row: next });
      row = next;
    }
    stepsByTask.set(task.id, taken);
    const final = finalById.get(task.id);
    if (
      final &&
      (final.status !== row.status || final.fence !== row.fence || final.attempts !== row.attempts)
    ) {
      forbid(
        'continuity',
        `task ${task.id}: ends ${final.status}/${final.fence} after ${final.attempts} attempts, but its recorded ` +
          `steps lead to ${row.status}/${row.fence} after ${row.attempts}`,
      );
    }
  }

  // The handler's receiver (effect_fenced): applied only above the highest fence seen, only by a fence that had
  // claimed the task, never another fence's after done; the completing claim's effect is the one that stands.
  const effectsByTask = groupBy(trace.effectLog, (e) => e.taskId);
  for (const task of trace.tasks) {
    const taken = stepsByTask.get(task.id) ?? [];
    const claims = taken.filter((s) => s.step === 'claim');
    const done = taken.find((s) => s.step === 'complete');
    let seen = 0;
    for (const effect of [...(effectsByTask.get(task.id) ?? [])].sort(byId)) {
      if (!effect.applied) continue;
      count('effect');
      if (!effectApplies(seen, effect.fence)) {
        forbid(
          'effect_fenced',
          `task ${task.id}: effect of fence ${effect.fence} applied after fence ${seen}'s`,
        );
      }
      if (!claims.some((c) => c.transition.newFence === effect.fence && c.transition.at <= effect.at)) {
        forbid(
          'effect_fenced',
          `task ${task.id}: effect of fence ${effect.fence} applied before (or without) its claim`,
        );
      }
      if (done && done.transition.at <= effect.at && effect.fence !== done.transition.newFence) {
        forbid(
          'effect_fenced',
          `task ${task.id}: effect of fence ${effect.fence} applied after the task was done under ${done.transition.newFence}`,
        );
      }
      if (!done || effect.at <= done.transition.at) seen = Math.max(seen, effect.fence);
    }
    if (done && seen !== done.transition.newFence) {
      forbid(
        'effect_fenced',
        `task ${task.id}: done under fence ${done.transition.newFence}, but the effect standing then is fence ${seen || 'none'}'s`,
      );
    }
  }

  // What the workers reported (reports_true): every report matches a step recorded in the table.
  const has = (taskId, predicate) => (stepsByTask.get(taskId) ?? []).some(predicate);
  for (const e of trace.workerEvents) {
    const fenceIs = (s) => s.transition.newFence === e.fence;
    const at = `${e.worker}: task ${e.taskId} fence ${e.fence}`;
    if (e.msg === WORKER_MESSAGES.started) {
      count('report: task started');
      if (!has(e.taskId, (s) => s.step === 'claim' && s.row.status === 'running' && fenceIs(s))) {
        forbid('reports_true', `${at}: handler started without a claim under that fence`);
      }
    } else if (e.msg === WORKER_MESSAGES.completed) {
      count('report: task completed');
      if (!has(e.taskId, (s) => s.step === 'complete' && fenceIs(s))) {
        forbid('reports_true', `${at}: reported completed, but no completion under that fence applied`);
      }
    } else if (e.msg === WORKER_MESSAGES.failed || e.msg === WORKER_MESSAGES.dead) {
      const status = e.msg === WORKER_MESSAGES.failed ? 'failed' : 'dead';
      count(`report: task ${status}`);
      if (!has(e.taskId, (s) => s.step.startsWith('fail') && s.row.status === status && fenceIs(s))) {
        forbid('reports_true', `${at}: reported ${status}, but no fail under that fence made it ${status}`);
      }
    } else if (e.msg === WORKER_MESSAGES.stale) {
      count(`report: stale ${e.operation}`);
      const step = e.operation === 'complete' ? 'complete' : 'fail';
      if (has(e.taskId, (s) => s.step.startsWith(step) && fenceIs(s))) {
        const finding = {
          rule: 'reports_true',
          message: `${at}: reported a stale ${e.operation}, but it applied`,
        };
        // The model's documented finding (docs/verification.md): a fail whose reply was lost, re-read after
        // another worker claimed the task, is reported stale. A note, not a violation; a complete never is.
        if (step === 'fail') notes.push(finding);
        else violations.push(finding);
      }
    } else if (e.msg === WORKER_MESSAGES.claimSkipped) {
      count('report: claim skipped');
      if (has(e.taskId, (s) => s.step === 'claim' && s.row.status === 'running' && fenceIs(s))) {
        forbid('reports_true', `${at}: reported the claim skipped, but it claimed the task`);
      }
    }
  }

  for (const task of trace.tasks) {
    if (!TERMINAL.has(task.status)) forbid('finished', `task ${task.id} ended ${task.status}`);
  }
  return { steps, violations, notes };
}

/**
 * Reads a chaos run directory (`tables.json`, `summary.json`, `workers/*.log`) into a {@link Trace}.
 * @param {string} dir
 * @param {{ maxAttempts?: number }} [options] max_attempts of the run's tasks (the harness enqueues 12)
 * @returns {Trace}
 */
export function loadRun(dir, { maxAttempts = 12 } = {}) {
  const tables = JSON.parse(readFileSync(join(dir, 'tables.json'), 'utf8'));
  const summary = existsSync(join(dir, 'summary.json'))
    ? JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'))
    : {};
  const wanted = new Set(Object.values(WORKER_MESSAGES));
  /** @type {WorkerEvent[]} */
  const workerEvents = [];
  const logs = join(dir, 'workers');
  for (const file of existsSync(logs) ? readdirSync(logs).sort() : []) {
    if (!file.endsWith('.log')) continue;
    for (const line of readFileSync(join(logs, file), 'utf8').split('\n')) {
      if (!line.startsWith('{')) continue;
      let entry;
      try {
        entry = JSON.parse(line);
      } catch {
        continue;
      }
      if (!wanted.has(entry.msg) || entry.taskId === undefined) continue;
      workerEvents.push({
        worker: basename(file, '.log'),
        msg: entry.msg,
        taskId: String(entry.taskId),
        fence: Number(entry.fence),
        ...(entry.operation ? { operation: entry.operation } : {}),
        ...(entry.reason ? { reason: entry.reason } : {}),
      });
    }
  }
  return {
    tasks: tables.tasks,
    transitions: tables.transitions,
    effectLog: tables.effectLog,
    leases: tables.leases,
    workerEvents,
    exactFences: (summary.backend ?? basename(dir)).includes('dynamodb'),
    maxAttempts,
  };
}

function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { 'max-attempts': { type: 'string', default: '12' } },
  });
  if (positionals.length === 0) {
    process.stderr.write('usage: node spec/trace-check.mjs <chaos run directory>... [--max-attempts N]\n');
    process.exitCode = 2;
    return;
  }
  let failed = false;
  for (const dir of positionals) {
    const trace = loadRun(dir, { maxAttempts: Number(values['max-attempts']) });
    if (trace.tasks.length > 0 && trace.workerEvents.length === 0) {
      // Nothing to check the reports against: the logs are missing, or their messages changed (WORKER_MESSAGES).
      process.stdout.write(`${dir}\n  no worker reports found in ${join(dir, 'workers')}\n`);
      failed = true;
      continue;
    }
    const { steps, violations, notes } = checkTrace(trace);
    const summary = Object.entries(steps)
      .map(([step, n]) => `${step} ${n}`)
      .join(', ');
    process.stdout.write(`${dir}\n  steps checked: ${summary}\n  forbidden steps: ${violations.length}\n`);
    for (const v of violations) process.stdout.write(`    [${v.rule}] ${v.message}\n`);
    for (const n of notes) process.stdout.write(`  note [${n.rule}] ${n.message} (the documented finding)\n`);
    failed ||= violations.length > 0;
  }
  if (failed) process.exitCode = 1;
}

if (import.meta.url === `file://${process.argv[1]}`) main();
