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

/**
 * The sub-prefix of a lock key under which its holder stamps the acquisition time:
 * `<lock key>/.since/<session id>`, locked by the holder's session in the txn that takes the key (so its
 * `ModifyIndex` is the fence), value: the holder's wall clock in ms. Deleted (the whole sub-prefix) by the
 * txn that releases the key; with `behavior=delete` it goes with the session. Like the line's `/.wait/`, a
 * caller key never encodes to a segment starting with `.`, so it never collides with or decodes as a lock.
 */
export const SINCE_SEGMENT = '/.since/';

/** The key where `sessionId` stamps its acquisition of `consulKey`. */
export function sinceKey(consulKey: string, sessionId: string): string {
  return consulKey + SINCE_SEGMENT + sessionId;
}

/**
 * The acquisition time a `.since` entry gives for the acquisition of `consulKey` by `sessionId` with `fence`:
 * only when that acquisition's txn wrote it (same session, `ModifyIndex` equal to the fence).
 */
export function acquiredAtOf(
  acquisition: { consulKey: string; sessionId: string; fence: number },
  since: KvEntry | undefined,
): number | undefined {
  const { consulKey, sessionId, fence } = acquisition;
  if (!since || since.Key !== sinceKey(consulKey, sessionId)) return undefined;
  if (sessionOf(since) !== sessionId || since.ModifyIndex !== fence) return undefined;
  const at = Number(since.Value);
  return since.Value && Number.isSafeInteger(at) ? at : undefined;
}

/**
 * The holder an entry describes, or `null` when it is free, missing, or not a key of this codec; with the
 * acquisition time of `since` (the holder's `.since` entry) when it belongs to this acquisition.
 */
export function holderOf(
  entry: KvEntry | undefined,
  codec: KeyCodec,
  key?: string,
  since?: KvEntry,
): LockHolder | null {
  const sessionId = sessionOf(entry);
  if (!entry || !sessionId) return null;
  const callerKey = key ?? codec.decode(entry.Key);
  if (callerKey === undefined) return null;
  const fence = fenceOf(entry);
  const acquiredAt = acquiredAtOf({ consulKey: entry.Key, sessionId, fence }, since);
  return {
    key: callerKey,
    sessionId,
    fence,
    value: entry.Value === null || entry.Value === undefined ? undefined : entry.Value,
    ...(acquiredAt === undefined ? {} : { acquiredAt, acquiredAtSource: 'holder' as const }),
  };
}
