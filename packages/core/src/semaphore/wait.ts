import { pollDelay, waitForFree } from '../acquire.js';
import { sleep } from '../clock.js';
import type { LockProvider } from '../lock.js';

/** Most slots one waiter watches at once; the others are retried when a watch round ends (one TTL). */
export const MAX_WATCHED_SLOTS = 16;

/**
 * Waits until one of `keys` is seen free. Returns true when one was free at the first look (the previous
 * refusal was a lock-delay window, or a release raced the look), false after a change or a poll interval.
 * Each watch ends after `ttlMs` at the latest, so a missed notification costs one TTL, never forever.
 */
export async function waitForAnySlot(
  provider: LockProvider,
  keys: readonly string[],
  signal: AbortSignal,
  attempt: number,
  ttlMs: number,
): Promise<boolean> {
  const { clock } = provider;
  if (!provider.capabilities.nativeWatch) {
    await sleep(pollDelay(attempt, ttlMs), { signal, clock }).catch(() => undefined);
    return false;
  }
  const inner = new AbortController();
  const onAbort = () => inner.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  const ops = { watch: provider.watch.bind(provider), nativeWatch: true, clock, ttlMs };
  const waits = sample(keys, MAX_WATCHED_SLOTS).map((key) => waitForFree(ops, key, inner.signal, attempt));
  for (const wait of waits) wait.catch(() => undefined);
  try {
    return await Promise.race(waits);
  } finally {
    signal.removeEventListener('abort', onAbort);
    inner.abort();
  }
}

function sample(keys: readonly string[], max: number): readonly string[] {
  if (keys.length <= max) return keys;
  const copy = [...keys];
  for (let i = 0; i < max; i++) {
    const j = i + Math.floor(Math.random() * (copy.length - i));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy.slice(0, max);
}
