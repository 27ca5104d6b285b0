import type { LockHolder, LockWaiter } from '@baton/core';

/** A lock holder as `baton locks` prints it (`--json`: these fields; the table: a selection). */
export interface HolderJson {
  key: string;
  sessionId: string;
  fence: number;
  value: string | null;
  /** When the backend recorded the acquisition (ISO 8601), on the clock `acquiredAtSource` names; null if not. */
  acquiredAt: string | null;
  acquiredAtSource: 'server' | 'holder' | null;
  /** This machine's clock minus `acquiredAt`, in ms (off by the clocks' skew); null when not recorded. */
  ageMs: number | null;
  /** The backend's own remaining lease, ms; null where it reports only a bound. */
  leaseRemainingMs: number | null;
  /** An upper bound of the remaining lease, ms (Consul, etcd, DynamoDB); null when exact or unknown. */
  leaseRemainingAtMostMs: number | null;
}

export function holderJson(holder: LockHolder, now: number): HolderJson {
  const acquiredAt = holder.acquiredAt ?? null;
  return {
    key: holder.key,
    sessionId: holder.sessionId,
    fence: holder.fence,
    value: holder.value ?? null,
    acquiredAt: acquiredAt === null ? null : new Date(acquiredAt).toISOString(),
    acquiredAtSource: acquiredAt === null ? null : (holder.acquiredAtSource ?? null),
    ageMs: acquiredAt === null ? null : Math.max(0, now - acquiredAt),
    leaseRemainingMs: holder.leaseRemainingMs ?? null,
    leaseRemainingAtMostMs: holder.leaseRemainingAtMostMs ?? null,
  };
}

/** `1.5 s (holder clock)`, or `-` when the backend recorded no acquisition time. */
export function ageText(view: HolderJson): string {
  return view.ageMs === null ? '-' : `${humanMs(view.ageMs)} (${view.acquiredAtSource} clock)`;
}

/** `12.0 s`, `≤ 30.0 s` for an upper bound, `-` when the backend reports neither. */
export function leaseText(view: HolderJson): string {
  if (view.leaseRemainingMs !== null) return humanMs(view.leaseRemainingMs);
  if (view.leaseRemainingAtMostMs !== null) return `≤ ${humanMs(view.leaseRemainingAtMostMs)}`;
  return '-';
}

/** The waiting line as one line of text: `2 (1. <session>, 2. <session>)`. */
export function waitersText(waiters: readonly LockWaiter[]): string {
  if (waiters.length === 0) return 'none';
  return `${waiters.length} (${waiters.map((w) => `${w.position}. ${w.sessionId}`).join(', ')})`;
}

export function humanMs(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1_000).toFixed(1)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}
