import {
  BatonError,
  backoffDelay,
  type Clock,
  jitter,
  type LockHolder,
  sameHolder,
  sleep,
} from '@baton/core';
import { holderOf } from './entry.js';
import type { ConsulHttp } from './http.js';
import type { KeyCodec } from './keys.js';

/** What {@link consulWatch} needs. */
export interface ConsulWatchInit {
  http: ConsulHttp;
  codec: KeyCodec;
  clock: Clock;
  /** `?wait` of each blocking query. */
  waitMs: number;
  /** Base of the jittered backoff after a failed query. */
  retryBaseMs: number;
  /**
   * Completes a changed holder before it is yielded (the provider's public watch adds its times); a failure
   * is retried like a failed query. Absent: holders are yielded as the key's entry describes them.
   */
  complete?: ((holder: LockHolder) => Promise<LockHolder>) | undefined;
}

/**
 * The holder of `key` now, then after each change, through Consul blocking queries (`?index=&wait=`).
 *
 * Follows Consul's rules for blocking queries: the first query does not block; a returned index lower than
 * the one sent (a snapshot restore, a new leader) resets to 0 so the next query reads the current state at
 * once; an index below 1 is taken as 1. A return without a change is not reported. A holder with a smaller
 * fence than one already reported is skipped, so an older state never follows a newer one.
 *
 * Transient failures are retried with jittered backoff, for as long as the watch runs; a failure that is not
 * retryable (a 403 when the token cannot read the key) ends the iteration by throwing it.
 */
export async function* consulWatch(
  init: ConsulWatchInit,
  key: string,
  signal: AbortSignal | undefined,
): AsyncGenerator<LockHolder | null> {
  const consulKey = init.codec.encode(key);
  let index = 0;
  let failures = 0;
  let last: LockHolder | null | undefined;
  let highestFence = 0;
  while (!signal?.aborted) {
    let answer: Awaited<ReturnType<ConsulHttp['getKey']>>;
    try {
      answer = await init.http.getKey(consulKey, { index, waitMs: init.waitMs, signal });
      failures = 0;
    } catch (error) {
      if (signal?.aborted) return;
      if (error instanceof BatonError && !error.retryable) throw error;
      const delay = backoffDelay(failures++, {
        baseMs: init.retryBaseMs,
        maxMs: Math.max(init.retryBaseMs, 10_000),
      });
      try {
        await sleep(delay, { ...(signal ? { signal } : {}), clock: init.clock });
      } catch {
        return;
      }
      continue;
    }
    const sent = index;
    index = answer.index < index ? 0 : Math.max(1, answer.index);
    if (sent > 0 && index === sent) {
      // Nothing changed (the wait ran out). A short pause keeps a server that answers at once from spinning us.
      try {
        await sleep(jitter(init.retryBaseMs, 0.5), { ...(signal ? { signal } : {}), clock: init.clock });
      } catch {
        return;
      }
    }
    const holder = holderOf(answer.entry, init.codec, key);
    if (holder && holder.fence < highestFence) continue;
    if (last !== undefined && sameHolder(last, holder)) continue;
    let complete = holder;
    if (holder && init.complete) {
      try {
        complete = await init.complete(holder);
      } catch (error) {
        if (signal?.aborted) return;
        if (error instanceof BatonError && !error.retryable) throw error;
        index = 0;
        try {
          await sleep(backoffDelay(failures++, { baseMs: init.retryBaseMs, maxMs: 10_000 }), {
            ...(signal ? { signal } : {}),
            clock: init.clock,
          });
        } catch {
          return;
        }
        continue;
      }
    }
    if (holder) highestFence = holder.fence;
    last = holder;
    yield complete;
  }
}
