import { InvalidArgumentError } from '../errors.js';
import type { Task, TaskStatus } from '../task-source.js';

/** One stored task of the memory source. */
export interface Row {
  readonly seq: number;
  readonly id: string;
  /** Shard in [0, 1024), drawn at enqueue: buckets are ranges of shards. */
  readonly shard: number;
  readonly kind: string;
  readonly payloadJson: string;
  status: TaskStatus;
  attempts: number;
  readonly maxAttempts: number;
  runAt: number;
  readonly createdAt: number;
  fence: number | null;
  /** Layout epoch of the latest claim: fences of other epochs came from other lock keys. */
  leaseEpoch: number | null;
  workerId: string | null;
  resultJson: string;
  lastError: string | null;
  claimedAt: number | null;
}

/** Enqueue order as a fixed-width decimal string, so string order is numeric order. */
export function dueKey(seq: number): string {
  return seq.toString().padStart(16, '0');
}

/** A frozen copy of a row as a {@link Task}. */
export function snapshot(row: Row): Task {
  return Object.freeze({
    id: row.id,
    kind: row.kind,
    payload: JSON.parse(row.payloadJson) as unknown,
    status: row.status,
    attempts: row.attempts,
    maxAttempts: row.maxAttempts,
    runAt: new Date(row.runAt),
    createdAt: new Date(row.createdAt),
    fence: row.fence,
    workerId: row.workerId,
    result: JSON.parse(row.resultJson) as unknown,
    lastError: row.lastError,
  });
}

export function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new InvalidArgumentError(`${name} must be a whole number >= 1, got ${value}`);
  }
  return value;
}
