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

/** The holder a lock key describes, or `null` when it does not exist. */
export function holderOf(kv: IKeyValue | undefined, key: string): LockHolder | null {
  if (!kv) return null;
  return {
    key,
    sessionId: leaseHex(kv.lease),
    fence: revision(kv.create_revision),
    value: publishedValue(kv),
  };
}

/** What {@link etcdWatch} needs. */
export interface EtcdWatchContext {
  rpc: EtcdRpc;
  keys: EtcdKeys;
  clock: Clock;
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
      const response = await context.rpc.range(`read '${key}'`, lockKey);
      const holder = holderOf(response.kvs[0], key);
      failures = 0;
      next = String(revision(response.header.revision) + 1);
      if (last === undefined || !sameHolder(last, holder)) {
        last = holder;
        yield holder;
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
