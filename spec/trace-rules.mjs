// The transition rules of spec/baton.pml, in JavaScript, for checking recorded histories (spec/trace-check.mjs).
// Each function is the guard and effect of one model step, written the way the model writes it; keep the two
// in step (docs/verification.md, "model-to-code table", names the Promela inline of each).

/** Statuses a claim may take a task from (`RUNNABLE` in the model). */
export const RUNNABLE = new Set(['pending', 'running', 'failed']);
/** Statuses a task never leaves (`TERMINAL`). */
export const TERMINAL = new Set(['done', 'dead']);

/**
 * @typedef {object} Row the part of a task row the protocol reads and writes
 * @property {string} status
 * @property {number | null} fence
 * @property {number} attempts
 */

/**
 * `db_claim`: a runnable task whose fence is NULL or older takes the new fence; a running task that used its
 * last attempt is buried instead (dead, under the new fence). `null`: the claim is refused.
 * @param {Row} row
 * @param {number} fence
 * @param {number} maxAttempts
 * @returns {Row | null}
 */
export function claim(row, fence, maxAttempts) {
  if (!RUNNABLE.has(row.status) || !(row.fence === null || row.fence < fence)) return null;
  if (row.status === 'running' && row.attempts >= maxAttempts) return { ...row, status: 'dead', fence };
  return { status: 'running', fence, attempts: row.attempts + 1 };
}

/** `db_complete`: only the running claim that holds the fence. */
export function complete(row, fence) {
  return row.status === 'running' && row.fence === fence ? { ...row, status: 'done' } : null;
}

/** `db_fail`: only the running claim that holds the fence; failed while attempts remain, else dead. */
export function fail(row, fence, retryable, maxAttempts) {
  if (!(row.status === 'running' && row.fence === fence)) return null;
  return { ...row, status: retryable && row.attempts < maxAttempts ? 'failed' : 'dead' };
}

/**
 * The source's `bury` of a claimed row that cannot be decoded (not in the model: a data error, not a race;
 * it has the same guard as fail).
 */
export function buryInvalid(row, fence) {
  return row.status === 'running' && row.fence === fence ? { ...row, status: 'dead' } : null;
}

/** `rx_effect`: the receiver applies a fence above the highest it has seen. */
export function effectApplies(seen, fence) {
  return fence > seen;
}

/**
 * Which model steps turn `before` into `after` (status and fence as the tasks table's trigger recorded them).
 * Empty when the model allows no step between them.
 * @param {Row} before
 * @param {{ status: string, fence: number | null }} after
 * @param {number} maxAttempts
 * @returns {Array<{ step: string, row: Row }>}
 */
export function explain(before, after, maxAttempts) {
  const candidates = [];
  if (after.fence !== null && after.fence !== before.fence) {
    candidates.push({ step: 'claim', row: claim(before, after.fence, maxAttempts) });
  } else {
    const f = before.fence ?? Number.NaN;
    candidates.push(
      { step: 'complete', row: complete(before, f) },
      { step: 'fail', row: fail(before, f, true, maxAttempts) },
      { step: 'fail (not retryable)', row: fail(before, f, false, maxAttempts) },
      { step: 'bury (invalid row)', row: buryInvalid(before, f) },
    );
  }
  return candidates
    .filter((c) => c.row !== null && c.row.status === after.status && c.row.fence === after.fence)
    .map((c) => ({ step: c.step, row: /** @type {Row} */ (c.row) }));
}
