import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { ProtocolError } from '@baton/core';
import { BACKEND } from './errors.js';

/** Prefix of every lock item's partition key; keeps lock items apart from the fence-epoch item. */
export const LOCK_PREFIX = 'lock:';
/** Partition key of the table-wide fence-epoch counter (`epoch` fence mode only). */
export const EPOCH_ITEM_KEY = 'meta:fence-epoch';

/**
 * How fences are drawn.
 *
 * - `counter`: the fence is a per-item counter, `ADD fence 1` in the very request that takes the lease; a new
 *   item starts at 1. One request per acquisition, new keys included, and no shared item. Fences only
 *   increase as long as lock items are never deleted (baton never deletes them; DynamoDB TTL on the table
 *   or an operator's DeleteItem would restart a key's fences).
 * - `epoch`: `epoch × FENCE_SPAN + n`, where a new item draws `epoch` from a table-wide counter item *after*
 *   the item exists, so a deleted and re-created item still starts above every fence its predecessor handed
 *   out. Released keys are deleted (nobody waiting, no hold) and kept items carry a TTL attribute, so the
 *   table holds about one item per key in use. A new key costs 3 requests (create, epoch, grant), one of
 *   them on the shared counter item.
 */
export type FenceMode = 'counter' | 'epoch';

/** The fence modes, default first. */
export const FENCE_MODES = ['counter', 'epoch'] as const satisfies readonly FenceMode[];

/**
 * Fences in `epoch` mode are `epoch × FENCE_SPAN + n`: a lock item takes a fresh epoch from the table-wide
 * counter when it is created (or re-created after an operator deleted it), then counts acquisitions `n`
 * within that span. A re-created item therefore starts above every fence its predecessor handed out. 2^20
 * acquisitions per span (a new epoch is taken when a span is used up) and 2^33 epochs keep fences safe
 * integers.
 */
export const FENCE_SPAN = 2 ** 20;

/** Attribute names of a lock item. */
export const ATTR = {
  owner: 'owner',
  ownerName: 'ownerName',
  rvn: 'rvn',
  fence: 'fence',
  fenceMax: 'fenceMax',
  leaseMs: 'leaseMs',
  delayMs: 'lockDelayMs',
  holdMs: 'holdMs',
  value: 'value',
  epoch: 'epoch',
  waiting: 'waiting',
  tickets: 'tickets',
  expiresAt: 'expiresAt',
  mode: 'mode',
  acquired: 'acquired',
} as const;

/**
 * `epoch` mode writes `expiresAt` (Unix seconds, for the table's DynamoDB TTL) on every item it keeps: the
 * item's own windows (lease, lock-delay, hold) plus this much. Only DynamoDB's garbage collection reads it;
 * no decision of baton does.
 */
export const EXPIRY_SLACK_S = 86_400;

/** Prefix of a waiter's ticket attribute (`w:<waiter id>`, N) on a lock item. */
export const WAITER_TICKET_PREFIX = 'w:';
/**
 * Prefix of a waiter's details attribute (`wi:<waiter id>`, M: `v` version, `l` lease ms, `s` session, `t`
 * when it lined up: the waiter's wall clock, ms, absent on places written before it was stored).
 */
export const WAITER_INFO_PREFIX = 'wi:';

/**
 * One place in a lock item's line of waiters (blocking acquisitions waiting for the key). It lives on the
 * lock item itself as two attributes, so one consistent read shows the holder and the whole line.
 */
export interface WaiterRecord {
  /** Fresh id of this place (one per wait). */
  id: string;
  /** Position: drawn from the item's `tickets` counter, which only rises. */
  ticket: number;
  /** A fresh UUID on every refresh by the waiter's session heartbeat: unchanged means nobody refreshes it. */
  version: string;
  /** Lease duration the waiter's session advertises: how long its version may stay unchanged. */
  leaseMs: number;
  /** The waiting session (for operators; nothing is decided on it). */
  sessionId: string;
  /** When it lined up, on the waiter's wall clock (ms since the epoch); for operators only. */
  since: number | undefined;
}

/** A lock item as stored. */
export interface LockRecord {
  /** The caller's key. */
  key: string;
  /** Holding session, absent when free. */
  owner: string | undefined;
  ownerName: string | undefined;
  /** Record version number: a fresh UUID on every write. */
  rvn: string;
  fence: number;
  /**
   * Highest fence of the current epoch span; absent on items created in `counter` mode (an `epoch`-mode
   * provider then moves the item to a new epoch above its fence).
   */
  fenceMax: number | undefined;
  /** Lease duration the holder advertises, ms. */
  leaseMs: number;
  /** Extra wait (lock-delay) the holder asks contenders to add after its lease, ms. */
  delayMs: number;
  /** After an early release: how long the key stays unavailable (lockAtLeastFor), ms. */
  holdMs: number;
  value: string | undefined;
  /** The line of waiters, in ticket order (first in line first). */
  waiters: WaiterRecord[];
  /**
   * When the holder took the key, on the holder's wall clock (ms since the epoch), from the `acquired`
   * attribute (M: `t` the time, `o` the owner that wrote it). Only the current owner's stamp counts: a stamp
   * left by an earlier holder (a grant by a version that did not write it) is ignored. For operators only.
   */
  acquiredAt: number | undefined;
}

export type Item = Record<string, AttributeValue>;

export function encodeKey(key: string): string {
  return LOCK_PREFIX + key;
}

/** The smallest epoch whose span starts above `fence`. */
export function epochAbove(fence: number): number {
  return Math.floor(fence / FENCE_SPAN) + 1;
}

/** First fence and span limit of `epoch`. */
export function epochSpan(epoch: number): { first: number; max: number } {
  const first = epoch * FENCE_SPAN + 1;
  const max = epoch * FENCE_SPAN + FENCE_SPAN - 1;
  if (!Number.isSafeInteger(max) || epoch < 1) {
    throw new ProtocolError(`fence epoch ${epoch} is out of range`, { backend: BACKEND });
  }
  return { first, max };
}

function str(item: Item, name: string): string | undefined {
  return item[name]?.S;
}

function num(item: Item, name: string): number | undefined {
  const raw = item[name]?.N;
  if (raw === undefined) return undefined;
  const value = Number(raw);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** Parses a lock item; throws `PROTOCOL` when a required attribute is missing or malformed. */
export function parseRecord(key: string, item: Item): LockRecord {
  const rvn = str(item, ATTR.rvn);
  const fence = num(item, ATTR.fence);
  const fenceMax = num(item, ATTR.fenceMax);
  if (rvn === undefined || fence === undefined) {
    throw new ProtocolError(
      `lock item '${key}' lacks ${ATTR.rvn} or ${ATTR.fence}: it was not written by baton`,
      { backend: BACKEND },
    );
  }
  const owner = str(item, ATTR.owner);
  const leaseMs = num(item, ATTR.leaseMs);
  if (owner !== undefined && (leaseMs === undefined || leaseMs <= 0)) {
    throw new ProtocolError(`lock item '${key}' is held but advertises no ${ATTR.leaseMs}`, {
      backend: BACKEND,
    });
  }
  return {
    key,
    owner,
    ownerName: str(item, ATTR.ownerName),
    rvn,
    fence,
    fenceMax,
    leaseMs: leaseMs ?? 0,
    delayMs: num(item, ATTR.delayMs) ?? 0,
    holdMs: num(item, ATTR.holdMs) ?? 0,
    value: str(item, ATTR.value),
    waiters: parseWaiters(key, item),
    acquiredAt: acquiredStamp(item, owner),
  };
}

/** The waiters stored on a lock item, in ticket order. Throws `PROTOCOL` on a malformed entry. */
export function parseWaiters(key: string, item: Item): WaiterRecord[] {
  const waiters: WaiterRecord[] = [];
  for (const name of Object.keys(item)) {
    if (!name.startsWith(WAITER_TICKET_PREFIX)) continue;
    const id = name.slice(WAITER_TICKET_PREFIX.length);
    const ticket = num(item, name);
    const info = item[WAITER_INFO_PREFIX + id]?.M;
    const version = info?.v?.S;
    const leaseMs = Number(info?.l?.N);
    if (ticket === undefined || !info || version === undefined || !(leaseMs > 0)) {
      throw new ProtocolError(`lock item '${key}' has a malformed waiter entry '${id}'`, {
        backend: BACKEND,
      });
    }
    const since = Number(info.t?.N);
    waiters.push({
      id,
      ticket,
      version,
      leaseMs,
      sessionId: info.s?.S ?? '',
      since: Number.isSafeInteger(since) ? since : undefined,
    });
  }
  return waiters.sort((a, b) => a.ticket - b.ticket);
}

/** The `acquired` stamp of `owner`'s grant, or `undefined` (none, malformed, or another owner's). */
function acquiredStamp(item: Item, owner: string | undefined): number | undefined {
  const stamp = item[ATTR.acquired]?.M;
  if (owner === undefined || stamp?.o?.S !== owner) return undefined;
  const at = Number(stamp.t?.N);
  return Number.isSafeInteger(at) ? at : undefined;
}
