// The result file every benchmark writes: bench/results/<name>.json (or --out <dir>).
//
// {
//   "format": "baton-bench/1",
//   "benchmark": "lock-roundtrip", "title": "...", "status": "ok" | "skipped" | "failed",
//   "quick": false, "startedAt": ISO, "durationMs": n, "load1": { "before": n, "after": n },
//   "machine": { cpuModel, cores, memoryBytes, node, packages: {...}, commit, ... },
//   "parameters": { ... what was run ... },
//   "rounds": [ { ... one entry per measured round, raw numbers ... } ],
//   "summary": [ { ... one entry per table row, medians and spreads computed from the rounds ... } ],
//   "table": "markdown table", "notes": [ "..." ],
//   "reason": "why skipped / failed (only then)"
// }

import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const RESULT_FORMAT = 'baton-bench/1';

/** Writes `result` to `<dir>/<benchmark>.json` atomically (temp file + rename). Returns the path. */
export function writeResult(dir, result) {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${result.benchmark}.json`);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(result, replacer, 2)}\n`);
  renameSync(tmp, path);
  return path;
}

// NaN and Infinity are not JSON: store them as null rather than letting JSON.stringify do it silently in
// some places and not others.
function replacer(_key, value) {
  return typeof value === 'number' && !Number.isFinite(value) ? null : value;
}

/**
 * Checks the shape of a result file. Returns a list of problems (empty when well-formed). Used by the smoke
 * test; it checks structure, never speed.
 */
export function validateResult(result, expectedName) {
  const problems = [];
  const need = (cond, message) => {
    if (!cond) problems.push(message);
  };
  need(result && typeof result === 'object', 'not an object');
  if (!result || typeof result !== 'object') return problems;
  need(result.format === RESULT_FORMAT, `format is ${result.format}, expected ${RESULT_FORMAT}`);
  need(result.benchmark === expectedName, `benchmark is ${result.benchmark}, expected ${expectedName}`);
  need(typeof result.title === 'string' && result.title.length > 0, 'title missing');
  need(['ok', 'skipped', 'failed'].includes(result.status), `bad status ${result.status}`);
  need(typeof result.quick === 'boolean', 'quick missing');
  need(!Number.isNaN(Date.parse(result.startedAt)), 'startedAt is not a date');
  need(Number.isFinite(result.durationMs) && result.durationMs >= 0, 'durationMs missing');
  const m = result.machine;
  need(m && typeof m.cpuModel === 'string', 'machine.cpuModel missing');
  need(m && Number.isInteger(m.cores) && m.cores > 0, 'machine.cores missing');
  need(m && Number.isFinite(m.memoryBytes), 'machine.memoryBytes missing');
  need(m && typeof m.node === 'string', 'machine.node missing');
  need(typeof m?.packages === 'object', 'machine.packages missing');
  if (result.status === 'ok') {
    need(result.parameters && typeof result.parameters === 'object', 'parameters missing');
    need(Array.isArray(result.rounds) && result.rounds.length > 0, 'rounds missing or empty');
    need(Array.isArray(result.summary) && result.summary.length > 0, 'summary missing or empty');
    need(typeof result.table === 'string' && result.table.startsWith('|'), 'table is not a markdown table');
    need(Array.isArray(result.notes), 'notes missing');
  } else {
    need(typeof result.reason === 'string' && result.reason.length > 0, 'reason missing');
  }
  return problems;
}
