import { holdProcess } from '../hold-process.js';
import type { LockHolder, LockProvider } from '../lock.js';
import { decodeLeaderInfo } from './info.js';
import type { LeaderInfo, ObserveOptions } from './types.js';

/**
 * The leader of `key` now, then each change, on the provider's watch. Yields `null` while nobody leads.
 * Filters what a watch may legally repeat or reorder across reconnects: a term lower than one already
 * yielded, a term that already ended (`null` was yielded after it), and unchanged states.
 */
export async function* observeLeader(
  provider: LockProvider,
  key: string,
  options: ObserveOptions = {},
): AsyncGenerator<LeaderInfo | null> {
  const watchOptions = {
    times: false,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.pollIntervalMs !== undefined ? { pollIntervalMs: options.pollIntervalMs } : {}),
  };
  const release = holdProcess();
  try {
    yield* filterLeaders(provider.watch(key, watchOptions), options.signal);
  } finally {
    release();
  }
}

async function* filterLeaders(
  holders: AsyncIterable<LockHolder | null>,
  signal: AbortSignal | undefined,
): AsyncGenerator<LeaderInfo | null> {
  let highestTerm = Number.NEGATIVE_INFINITY;
  let highestEnded = false;
  let last: string | undefined;
  for await (const holder of holders) {
    if (signal?.aborted) return;
    if (holder === null) {
      if (last === 'null') continue;
      highestEnded = true;
      last = 'null';
      yield null;
      continue;
    }
    if (holder.fence < highestTerm || (holder.fence === highestTerm && highestEnded)) continue;
    const fingerprint = `${holder.fence}:${holder.sessionId}:${holder.value ?? ''}`;
    if (fingerprint === last) continue;
    highestTerm = holder.fence;
    highestEnded = false;
    last = fingerprint;
    yield decodeLeaderInfo(holder);
  }
}
