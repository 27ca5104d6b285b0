import { type LockHolder, ProtocolError } from '@baton/core';
import { BACKEND } from './errors.js';

/** A fence as `pg` returns a bigint (text), checked to be a positive safe integer. */
export function toFence(value: unknown): number {
  const fence = Number(value);
  if (!Number.isSafeInteger(fence) || fence <= 0) {
    throw new ProtocolError(`postgres: fence ${String(value)} is not a positive safe integer`, {
      backend: BACKEND,
    });
  }
  return fence;
}

/** The holder a `locks` row joined with a live session describes. */
export function toHolder(row: Record<string, unknown>): LockHolder {
  return {
    key: String(row.key),
    sessionId: String(row.session_id),
    fence: toFence(row.fence),
    value: typeof row.value === 'string' ? row.value : undefined,
    ...(row.acquired_ms == null
      ? {}
      : { acquiredAt: Number(row.acquired_ms), acquiredAtSource: 'server' as const }),
    leaseRemainingMs: Number(row.remaining_ms),
  };
}
