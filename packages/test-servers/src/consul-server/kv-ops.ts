/**
 * KV operations inside a write transaction, mirroring Consul's state store (`agent/consul/state/kvs.go`):
 * the same preconditions, the same index bookkeeping and the same quirks (a plain set writes LockIndex 0 but
 * keeps the holder; an unchanged write keeps its ModifyIndex; `delete-cas` of a missing key succeeds).
 */
import { goQuoteString, rpcError } from './errors.js';
import type { LockEnd, LockHistory } from './lock-history.js';
import type { DirEntry, WriteTxn } from './state.js';

/** What a KV operation needs besides the transaction. */
export interface OpContext {
  readonly txn: WriteTxn;
  readonly history: LockHistory;
  /** Monotonic milliseconds, for the lock history. */
  readonly now: () => number;
}

/** A KV entry as a request describes it: indexes are filled in by the operation. */
export interface EntryInput {
  readonly key: string;
  readonly value: Buffer | null;
  readonly flags: bigint;
  readonly session: string;
  /** The CAS / check-index operand (`?cas=`, txn `Index`). */
  readonly modifyIndex?: number;
}

function sameValue(a: Buffer | null, b: Buffer | null): boolean {
  return (a ?? Buffer.alloc(0)).equals(b ?? Buffer.alloc(0));
}

function sameEntry(a: DirEntry, b: DirEntry): boolean {
  return (
    a.lockIndex === b.lockIndex &&
    a.key === b.key &&
    a.flags === b.flags &&
    a.session === b.session &&
    sameValue(a.value, b.value)
  );
}

/** Normalises an empty value to `null`: Consul's Raft encoding turns an empty byte slice into nil. */
export function normaliseValue(value: Buffer | null): Buffer | null {
  return value === null || value.length === 0 ? null : value;
}

/** `kvsSetTxn`: writes `input` with `lockIndex`; keeps the existing holder unless `updateSession`. */
function setTxn(ctx: OpContext, input: EntryInput, lockIndex: number, updateSession: boolean): DirEntry {
  const { txn } = ctx;
  const existing = txn.kvGet(input.key);
  const candidate: DirEntry = {
    key: input.key,
    value: normaliseValue(input.value),
    flags: input.flags,
    session: updateSession ? input.session : (existing?.session ?? ''),
    lockIndex,
    createIndex: existing ? existing.createIndex : txn.index,
    modifyIndex: txn.index,
  };
  if (existing && sameEntry(existing, candidate)) return { ...candidate, modifyIndex: existing.modifyIndex };
  txn.kvPut(candidate);
  return candidate;
}

/** A plain set (`PUT /v1/kv/:key`, txn `set`). The request's LockIndex is 0, and so is the stored one. */
export function kvsSet(ctx: OpContext, input: EntryInput): DirEntry {
  return setTxn(ctx, input, 0, false);
}

/** `?cas=N` / txn `cas`: 0 means "only if missing", N means "only if ModifyIndex is N". */
export function kvsSetCas(ctx: OpContext, input: EntryInput): DirEntry | undefined {
  const existing = ctx.txn.kvGet(input.key);
  const cas = input.modifyIndex ?? 0;
  if (cas === 0 && existing) return undefined;
  if (cas !== 0 && !existing) return undefined;
  if (existing && cas !== 0 && existing.modifyIndex !== cas) return undefined;
  return setTxn(ctx, input, 0, false);
}

/**
 * `?acquire=` / txn `lock` after the lock-delay pre-check. Returns `undefined` when another session holds the
 * key; throws for an empty or unknown session.
 */
export function kvsLock(ctx: OpContext, input: EntryInput): DirEntry | undefined {
  const { txn } = ctx;
  if (input.session === '') throw rpcError('missing session');
  if (!txn.session(input.session)) throw rpcError(`invalid session ${goQuoteString(input.session)}`);
  const existing = txn.kvGet(input.key);
  let lockIndex: number;
  let fresh: boolean;
  if (existing) {
    if (existing.session === input.session) {
      lockIndex = existing.lockIndex;
      fresh = false;
    } else if (existing.session !== '') {
      return undefined;
    } else {
      lockIndex = existing.lockIndex + 1;
      fresh = true;
    }
  } else {
    lockIndex = 1;
    fresh = true;
  }
  const stored = setTxn(ctx, input, lockIndex, true);
  if (fresh) {
    txn.afterCommit(() =>
      ctx.history.acquired(stored.key, stored.session, stored.modifyIndex, stored.lockIndex, ctx.now()),
    );
  }
  return stored;
}

/** `?release=` / txn `unlock`: only the holder may release; the value and flags are replaced. */
export function kvsUnlock(ctx: OpContext, input: EntryInput): DirEntry | undefined {
  if (input.session === '') throw rpcError('missing session');
  const existing = ctx.txn.kvGet(input.key);
  if (!existing || existing.session !== input.session) return undefined;
  const stored = setTxn(ctx, { ...input, session: '' }, existing.lockIndex, true);
  ctx.txn.afterCommit(() => ctx.history.ended(stored.key, 'released', ctx.now()));
  return stored;
}

/** Clears the holder of `entry` because its session was invalidated (`release` behavior). */
export function kvsReleaseInvalidated(ctx: OpContext, entry: DirEntry): void {
  setTxn(ctx, { ...entry, session: '' }, entry.lockIndex, true);
  ctx.txn.afterCommit(() => ctx.history.ended(entry.key, 'invalidated', ctx.now()));
}

/** Deletes `key` (if present) leaving a tombstone. Deleting a held key is allowed: locks are advisory. */
export function kvsDelete(ctx: OpContext, key: string, reason: LockEnd = 'deleted'): void {
  const existing = ctx.txn.kvGet(key);
  if (!existing) return;
  ctx.txn.tombstone(key);
  ctx.txn.kvDelete(key);
  if (existing.session !== '') ctx.txn.afterCommit(() => ctx.history.ended(key, reason, ctx.now()));
}

/** `DELETE ?cas=N` / txn `delete-cas`. As in Consul, a missing key counts as success. */
export function kvsDeleteCas(ctx: OpContext, key: string, cas: number): boolean {
  const existing = ctx.txn.kvGet(key);
  if (!existing || existing.modifyIndex !== cas) return existing === undefined;
  kvsDelete(ctx, key);
  return true;
}

/** `DELETE ?recurse` / txn `delete-tree`: one tombstone for the prefix (none for the whole tree). */
export function kvsDeleteTree(ctx: OpContext, prefix: string): void {
  const doomed = ctx.txn.kvList(prefix);
  if (doomed.length === 0) return;
  for (const entry of doomed) {
    ctx.txn.kvDelete(entry.key);
    if (entry.session !== '') ctx.txn.afterCommit(() => ctx.history.ended(entry.key, 'deleted', ctx.now()));
  }
  if (prefix !== '') ctx.txn.tombstone(prefix);
}

/** Txn `check-session`. */
export function kvsCheckSession(ctx: OpContext, key: string, session: string): DirEntry {
  const entry = ctx.txn.kvGet(key);
  if (!entry) throw rpcError(`failed to check session, key ${goQuoteString(key)} doesn't exist`);
  if (entry.session !== session) {
    throw rpcError(
      `failed session check for key ${goQuoteString(key)}, current session ${goQuoteString(entry.session)} != ${goQuoteString(session)}`,
    );
  }
  return entry;
}

/** Txn `check-index`. */
export function kvsCheckIndex(ctx: OpContext, key: string, index: number): DirEntry {
  const entry = ctx.txn.kvGet(key);
  if (!entry) throw rpcError(`failed to check index, key ${goQuoteString(key)} doesn't exist`);
  if (entry.modifyIndex !== index) {
    throw rpcError(
      `failed index check for key ${goQuoteString(key)}, current modify index ${entry.modifyIndex} != ${index}`,
    );
  }
  return entry;
}
