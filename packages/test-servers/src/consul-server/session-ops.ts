/**
 * Session writes inside a transaction, mirroring `agent/consul/state/session.go`: creation validates the node
 * and its checks; destruction (explicit, TTL expiry or a critical check) releases or deletes every key the
 * session holds and starts their lock-delay.
 */

import { rpcError } from './errors.js';
import { nsToMs } from './go-duration.js';
import { kvsDelete, kvsReleaseInvalidated, type OpContext } from './kv-ops.js';
import type { LockDelays } from './lock-delay.js';
import type { CheckStatus, SessionRecord } from './state.js';

/** What session operations need besides the KV context. */
export interface SessionOpContext extends OpContext {
  readonly lockDelays: LockDelays;
  /** Consul's `MaxLockDelay` (60 s): the cap applied when a lock-delay starts. */
  readonly maxLockDelayNs: bigint;
  /** Called after commit for every destroyed session (to stop its TTL timer). */
  readonly onSessionDestroyed: (id: string) => void;
}

/** Every check id a session depends on: legacy `Checks`, `NodeChecks` and `ServiceChecks`. */
export function sessionCheckIds(session: SessionRecord): string[] {
  return [
    ...(session.checks ?? []),
    ...(session.nodeChecks ?? []),
    ...(session.serviceChecks ?? []).map((c) => c.id),
  ];
}

/** Stores a new session after checking that its node and checks exist and none is critical. */
export function sessionCreateTxn(
  ctx: SessionOpContext,
  session: Omit<SessionRecord, 'createIndex' | 'modifyIndex'>,
): SessionRecord {
  const { txn } = ctx;
  if (!txn.node(session.node)) throw rpcError('Missing node registration');
  for (const checkId of sessionCheckIds({ ...session, createIndex: 0, modifyIndex: 0 })) {
    const check = txn.check(checkId);
    if (!check || check.node !== session.node) throw rpcError(`Missing check '${checkId}' registration`);
    if (check.status === 'critical') throw rpcError(`Check '${checkId}' is in critical state`);
  }
  const stored: SessionRecord = { ...session, createIndex: txn.index, modifyIndex: txn.index };
  txn.sessionPut(stored);
  return stored;
}

/** Destroys a session (no-op when unknown) and invalidates the locks it holds. */
export function sessionDestroyTxn(ctx: SessionOpContext, id: string): void {
  const { txn } = ctx;
  const session = txn.session(id);
  if (!session) return;
  // bigint: Math.min does not apply.
  let delayNs = session.lockDelayNs;
  if (delayNs > ctx.maxLockDelayNs) delayNs = ctx.maxLockDelayNs;
  for (const entry of txn.kvList('')) {
    if (entry.session !== id) continue;
    if (session.behavior === 'release') kvsReleaseInvalidated(ctx, entry);
    else kvsDelete(ctx, entry.key, 'invalidated');
    if (delayNs > 0n) txn.afterCommit(() => ctx.lockDelays.set(entry.key, nsToMs(delayNs)));
  }
  txn.sessionDelete(id);
  txn.afterCommit(() => ctx.onSessionDestroyed(id));
}

/** Updates a node check; a critical status destroys every session bound to it, in the same transaction. */
export function checkUpdateTxn(
  ctx: SessionOpContext,
  checkId: string,
  status: CheckStatus,
  output: string,
): void {
  const { txn } = ctx;
  const check = txn.check(checkId);
  if (!check) throw rpcError(`Missing check '${checkId}' registration`);
  if (check.status === status && check.output === output) return;
  txn.checkPut({ ...check, status, output, modifyIndex: txn.index });
  if (status !== 'critical') return;
  for (const session of txn.sessions()) {
    if (session.node === check.node && sessionCheckIds(session).includes(checkId)) {
      sessionDestroyTxn(ctx, session.id);
    }
  }
}
