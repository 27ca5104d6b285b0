import type { BucketLeaseRef } from './bucket-source.js';
import { InvalidArgumentError } from './errors.js';
import type { LeaseLayoutRequest } from './lease-layout.js';
import type { NewTask } from './task-source.js';

/**
 * Checks a fencing token handed to a {@link TaskSource} write: a non-negative safe integer, else
 * `INVALID_ARGUMENT`. Shared by the sources so that every one rejects the same inputs the same way.
 */
export function checkFence(fence: number): void {
  if (!Number.isSafeInteger(fence) || fence < 0) {
    throw new InvalidArgumentError(`fence must be a non-negative safe integer, got ${String(fence)}`);
  }
}

/**
 * `JSON.stringify(value)`, or `INVALID_ARGUMENT` naming `what` when the value cannot be stored as JSON (a
 * cycle, a BigInt, a bare function or `undefined`).
 */
export function jsonText(value: unknown, what: string): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    throw new InvalidArgumentError(`${what} is not JSON-serialisable`, { cause: error });
  }
  if (json === undefined) throw new InvalidArgumentError(`${what} is not JSON-serialisable`);
  return json;
}

/**
 * Checks a layout request against a source with `shards` shards: bucket mode needs a bucket count that is a
 * power of two dividing `shards`; task mode takes none. `INVALID_ARGUMENT` names what is wrong.
 */
export function checkLayoutRequest(request: LeaseLayoutRequest, shards: number): void {
  if (request?.mode === 'task') {
    if (request.buckets !== undefined && request.buckets !== null) {
      throw new InvalidArgumentError('lease layout: task mode takes no bucket count');
    }
    checkLocksName(request.locks);
    return;
  }
  if (request?.mode !== 'bucket') {
    throw new InvalidArgumentError(
      `lease layout: mode must be 'task' or 'bucket', got ${String(request?.mode)}`,
    );
  }
  checkBucketCount(request.buckets, shards);
  checkLocksName(request.locks);
}

function checkLocksName(locks: unknown): void {
  if (locks !== undefined && (typeof locks !== 'string' || !/^[a-z][a-z0-9-]{0,62}$/.test(locks))) {
    throw new InvalidArgumentError(`lease layout: locks must be a backend name, got ${String(locks)}`);
  }
}

/** A bucket count must be a power of two from 1 to `shards` (so buckets are whole ranges of shards). */
export function checkBucketCount(buckets: unknown, shards: number): asserts buckets is number {
  const ok =
    typeof buckets === 'number' &&
    Number.isInteger(buckets) &&
    buckets >= 1 &&
    buckets <= shards &&
    (buckets & (buckets - 1)) === 0;
  if (!ok) {
    throw new InvalidArgumentError(
      `bucket count must be a power of two from 1 to ${shards}, got ${String(buckets)}`,
    );
  }
}

/** Checks the shape of a bucket lease handed to a bucket operation. */
export function checkBucketLease(lease: BucketLeaseRef, shards: number): void {
  checkBucketCount(lease?.buckets, shards);
  if (!Number.isInteger(lease.bucket) || lease.bucket < 0 || lease.bucket >= lease.buckets) {
    throw new InvalidArgumentError(
      `bucket must be a whole number from 0 to ${lease.buckets - 1}, got ${String(lease.bucket)}`,
    );
  }
  if (!Number.isSafeInteger(lease.epoch) || lease.epoch < 1) {
    throw new InvalidArgumentError(`layout epoch must be a whole number >= 1, got ${String(lease.epoch)}`);
  }
  checkFence(lease.fence);
}

/**
 * The most characters of an error message a task keeps as `lastError`, and that baton's logs print: 8 192.
 * A handler that throws a 5 MB message would otherwise store 5 MB per attempt and write 5 MB log lines.
 * Sources cut longer messages with {@link truncateErrorMessage}; so does the worker before it records a
 * failure.
 */
export const MAX_ERROR_MESSAGE_LENGTH = 8_192;

/**
 * `message` unchanged when it has at most {@link MAX_ERROR_MESSAGE_LENGTH} characters, else its start
 * followed by `… [truncated: N characters in all]`, the whole at most that long. Never splits a surrogate
 * pair.
 */
export function truncateErrorMessage(message: string): string {
  if (message.length <= MAX_ERROR_MESSAGE_LENGTH) return message;
  const marker = `… [truncated: ${message.length} characters in all]`;
  let end = MAX_ERROR_MESSAGE_LENGTH - marker.length;
  const last = message.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${message.slice(0, end)}${marker}`;
}

/** The largest `maxAttempts` a task may have: 2^31 − 1 (PostgreSQL's `integer`). */
export const MAX_TASK_ATTEMPTS = 2_147_483_647;

/**
 * The longest {@link NewTask.delayMs}: 100 years (of 365.25 days). Longer delays are refused with
 * `INVALID_ARGUMENT`, so every due time stays a valid `Date` and a valid PostgreSQL `timestamptz`.
 */
export const MAX_TASK_DELAY_MS = 100 * 365.25 * 24 * 3_600_000;

/**
 * Checks a {@link NewTask}'s due time: at most one of `runAt` (a valid `Date`) and `delayMs` (milliseconds
 * from the source's now, 0 to {@link MAX_TASK_DELAY_MS}); throws `INVALID_ARGUMENT` naming `where`.
 */
export function checkDueTime(task: Pick<NewTask, 'runAt' | 'delayMs'>, where: string): void {
  if (task.runAt !== undefined && task.delayMs !== undefined) {
    throw new InvalidArgumentError(`${where}: give runAt or delayMs, not both`);
  }
  if (task.runAt !== undefined && (!(task.runAt instanceof Date) || Number.isNaN(task.runAt.getTime()))) {
    throw new InvalidArgumentError(`${where}: runAt must be a valid Date`);
  }
  const delay = task.delayMs;
  if (delay !== undefined && !(typeof delay === 'number' && delay >= 0 && delay <= MAX_TASK_DELAY_MS)) {
    throw new InvalidArgumentError(
      `${where}: delayMs must be a number of milliseconds from 0 to ${MAX_TASK_DELAY_MS} (100 years), got ${String(delay)}`,
    );
  }
}
