// The chaos run's report: one markdown table (printed, and pasted into docs/reliability.md).

import { INVARIANTS } from './checker.mjs';
import { FAULT_KINDS } from './faults.mjs';

/**
 * Formats a run's result as a markdown table plus the first violations.
 * @param {object} result what `runChaos` resolves
 */
function persistence(mode) {
  if (mode === undefined) return '';
  return mode === 'none' ? ' without persistence (restarts come back empty)' : ' with an append-only file';
}

export function formatReport(result) {
  const m = result.metrics;
  const faults = Object.keys(FAULT_KINDS)
    .filter((kind) => (result.faults[kind] ?? 0) > 0)
    .map((kind) => `${kind} ${result.faults[kind]}`)
    .join(', ');
  const totalFaults = Object.values(result.faults).reduce((a, b) => a + b, 0);
  const bucketMode = result.leaseBy === 'bucket';
  const byInvariant = Object.keys(INVARIANTS)
    .filter((name) => bucketMode || name !== 'bucket-fence')
    .filter((name) => m.limit || name !== 'kind-limit')
    .map((name) => `${name} ${result.violations.filter((v) => v.invariant === name).length}`)
    .join(', ');
  const rows = [
    [
      'backend',
      `${result.backend}${persistence(result.redisPersistence)} (${result.database}), ${result.workers} workers, TTL ${result.ttlMs} ms, ` +
        (bucketMode ? `bucket leases (${result.buckets} buckets)` : 'task leases'),
    ],
    ['seed', String(result.seed)],
    ['duration', `${fmtSeconds(result.faultPhaseMs)} of faults, ${fmtSeconds(result.drainMs)} to drain`],
    ['tasks', `${m.tasks} (done ${m.done}, dead ${m.dead}${deadReasons(result.deadReasons)})`],
    ['faults', `${totalFaults}: ${faults || 'none'}`],
    ['executions', String(m.executions)],
    ['raw duplicate executions', String(m.rawDuplicateExecutions)],
    ['applied completions', String(m.appliedCompletions)],
    ['stale writes rejected', `${m.staleWritesRejected} outcome writes, ${m.staleEffectsRejected} effects`],
    ['superseded effects', String(m.supersededEffects)],
    ['leases granted', `${m.leases} (${m.takeovers} ended by expiry or invalidation)`],
    ...(bucketMode
      ? [
          [
            'bucket leases in the source',
            `${m.bucketLeaseChanges} lock fences recorded, ${m.bucketLeaseRecords} claim statements, ${m.settles} settled tasks; ` +
              `${result.workerLogs.bucketsLost} buckets lost, ${result.workerLogs.bucketsHandedBack} handed back (workers)`,
          ],
        ]
      : []),
    ...(m.limit
      ? [
          [
            'per-kind limit',
            `${m.limit.kind} limited to ${m.limit.limit}` +
              (result.limit && result.limit.workersRanWith !== m.limit.limit
                ? ` (workers ran with ${result.limit.workersRanWith}: planted fault)`
                : '') +
              `: ${m.limit.tasks} tasks (done ${m.limit.done}, dead ${m.limit.dead}), ${m.limit.executions} executions, ` +
              `${m.limit.withoutPermit} without a permit; max ${m.limit.maxConcurrentValid} at once under valid permits ` +
              `(${m.limit.maxConcurrentRaw} counting handlers past their permit); ${m.limit.permitLeases} permit leases on ` +
              `${m.limit.slotsUsed} slots; ${result.workerLogs.limitSkipped} skips (workers' last stats)`,
          ],
        ]
      : []),
    ['sessions lost (workers)', String(result.workerLogs.sessionsLost)],
    ['lost tasks', String(m.lost)],
    ['worker crashes', String(result.crashes.length)],
    ['unexpected worker errors', String(result.unexpectedErrors.length)],
    ['invariant violations', `${result.violations.length} (${byInvariant})`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = ['| | |', '|---|---|', ...rows.map(([k, v]) => `| ${k.padEnd(width)} | ${v} |`)];
  const problems = [
    ...result.violations.slice(0, 20).map((v) => `- ${v.invariant}: ${v.message}`),
    ...(result.violations.length > 20 ? [`- ... and ${result.violations.length - 20} more`] : []),
    ...result.crashes.map((c) => `- worker ${c.id} crashed (exit code ${c.code}, signal ${c.signal})`),
    ...result.unexpectedErrors
      .slice(0, 10)
      .map((e) => `- worker ${e.worker} reported an unexpected ${e.phase} error: ${e.err}`),
  ];
  return [...lines, ...(problems.length > 0 ? ['', ...problems] : [])].join('\n');
}

function deadReasons(reasons = {}) {
  const parts = Object.entries(reasons)
    .sort((a, b) => b[1] - a[1])
    .map(([reason, n]) => `${n} ${reason}`);
  return parts.length > 0 ? `: ${parts.join(', ')}` : '';
}

function fmtSeconds(ms) {
  return `${Math.round(ms / 1000)} s`;
}
