import type { LockHolder } from '@baton/core';
import type { KvEntry } from './http.js';
import type { KeyCodec } from './keys.js';

/**
 * The fencing token of the acquisition behind `entry`.
 *
 * An acquisition's fence is the entry's `ModifyIndex` as the acquiring transaction left it (Consul's Raft
 * index: global, strictly increasing, never reused, also across deletion and re-creation of the key). A later
 * `publish` rewrites the value and so moves `ModifyIndex`; it therefore also stores the fence in `Flags`,
 * which every acquisition resets to 0. `Flags` counts only when it is a plausible fence of this entry
 * (between `CreateIndex` and `ModifyIndex`), so foreign flag values (such as the Go lock helper's magic
 * number) are ignored.
 */
export function fenceOf(entry: Pick<KvEntry, 'Flags' | 'CreateIndex' | 'ModifyIndex'>): number {
  const flags = entry.Flags;
  if (Number.isSafeInteger(flags) && flags > 0 && flags >= entry.CreateIndex && flags <= entry.ModifyIndex) {
    return flags;
  }
  return entry.ModifyIndex;
}

/** The session holding `entry`, or `undefined` when it is free. */
export function sessionOf(entry: KvEntry | undefined): string | undefined {
  const session = entry?.Session;
  return typeof session === 'string' && session !== '' ? session : undefined;
}

/** The holder an entry describes, or `null` when it is free, missing, or not a key of this codec. */
export function holderOf(entry: KvEntry | undefined, codec: KeyCodec, key?: string): LockHolder | null {
  const sessionId = sessionOf(entry);
  if (!entry || !sessionId) return null;
  const callerKey = key ?? codec.decode(entry.Key);
  if (callerKey === undefined) return null;
  return {
    key: callerKey,
    sessionId,
    fence: fenceOf(entry),
    value: entry.Value === null || entry.Value === undefined ? undefined : entry.Value,
  };
}
