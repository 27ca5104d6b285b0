import {
  BatonError,
  backoffDelay,
  type Clock,
  type LockHolder,
  sameHolder,
  sleep,
  type TimerHandle,
} from '@baton/core';
import type { IKeyValue, Watcher } from 'etcd3';
import type { EtcdKeys } from './keys.js';
import { type EtcdRpc, leaseHex, publishedValue, revision } from './rpc.js';

/**
 * The holder a lock key describes, or `null` when it does not exist; with the acquisition time `since` holds
 * when it was written by the same txn as the lock key (its `mod_revision` is the lock's `create_revision`).
 */
export function holderOf(
  kv: IKeyValue | undefined,
  key: string,
  since?: IKeyValue | undefined,
): LockHolder | null {
  if (!kv) return null;
  const fence = revision(kv.create_revision);
  const at = since && revision(since.mod_revision) === fence ? Number(since.value.toString('utf8')) : NaN;
  return {
    key,
    sessionId: leaseHex(kv.lease),
    fence,
    value: publishedValue(kv),
    ...(Number.isSafeInteger(at) ? { acquiredAt: at, acquiredAtSource: 'holder' as const } : {}),
  };
}

/** A holder read: the holder (without its remaining lease) and the revision of the read. */
export interface HolderRead {
  holder: LockHolder | null;
  revision: string;
}

/** What {@link etcdWatch} needs. */
export interface EtcdWatchContext {
  rpc: EtcdRpc;
  keys: EtcdKeys;
  clock: Clock;
  /** One linearizable read of the key's holder. */
  read(key: string): Promise<HolderRead>;
  /** Adds what etcd says is left of the holder's lease (one more request), before the holder is yielded. */
  complete(holder: LockHolder): Promise<LockHolder>;
  /** Longest wait on one watcher before the key is read again regardless. */
  maxWaitMs: number;
  retryBaseMs: number;
}

/**
 * The holder of `key` now and after each change: a linearizable read, then an etcd watch from the next
 * revision until the first event (or `maxWaitMs`), then a read again. Events between the read and the watch
 * are not missed (the watch starts at the read's revision + 1); a compacted history only costs a re-read.
 * Transient errors are retried with jittered backoff; a permission error ends the iteration.
 */
export async function* etcdWatch(
  context: EtcdWatchContext,
  key: string,
  signal: AbortSignal,
): AsyncGenerator<LockHolder | null> {
  const lockKey = context.keys.lock(key);
  let last: LockHolder | null | undefined;
  let failures = 0;
  while (!signal.aborted) {
    let next: string;
    try {
      const read = await context.read(key);
      const holder = read.holder;
      next = String(revision(read.revision) + 1);
      if (last === undefined || !sameHolder(last, holder)) {
        const complete = holder && (await context.complete(holder));
        failures = 0;
        last = holder;
        yield complete;
      } else {
        failures = 0;
      }
      await nextChange(context, lockKey, next, signal);
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof BatonError && !error.retryable) throw error;
      const delay = backoffDelay(failures++, {
        baseMs: context.retryBaseMs,
        maxMs: context.retryBaseMs * 16,
      });
      await sleep(delay, { signal, clock: context.clock }).catch(() => undefined);
    }
  }
}

/**
 * Resolves at the first event on `key` from `startRevision`, a watch error, `maxWaitMs`, or abort; at once,
 * without opening a watcher, when `signal` aborted already. (A signal that aborted earlier fires no `abort`
 * event: without that check a caller whose read was in flight when it gave up would wait for a change of the
 * key or `maxWaitMs`.)
 */
export async function nextChange(
  context: Pick<EtcdWatchContext, 'rpc' | 'clock' | 'maxWaitMs'>,
  key: Buffer,
  startRevision: string,
  signal: AbortSignal,
): Promise<void> {
  let watcher: Watcher | undefined;
  let timer: TimerHandle | undefined;
  let onAbort: (() => void) | undefined;
  let done = false;
  if (signal.aborted) return;
  try {
    await new Promise<void>((resolve, reject) => {
      onAbort = resolve;
      signal.addEventListener('abort', onAbort, { once: true });
      timer = context.clock.setTimeout(resolve, context.maxWaitMs);
      context.rpc.watchKey(key, startRevision).then((created) => {
        if (done) {
          void created.cancel().catch(() => undefined);
          return;
        }
        watcher = created;
        created.on('put', () => resolve());
        created.on('delete', () => resolve());
        created.on('error', () => resolve());
        created.on('end', () => resolve());
      }, reject);
    });
  } finally {
    done = true;
    if (onAbort) signal.removeEventListener('abort', onAbort);
    if (timer !== undefined) context.clock.clearTimeout(timer);
    await watcher?.cancel().catch(() => undefined);
  }
}
