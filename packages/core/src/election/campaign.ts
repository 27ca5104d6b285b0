import { backoffDelay } from '../backoff.js';
import { type Clock, sleep } from '../clock.js';
import { AbortedError, BatonError, InvalidArgumentError } from '../errors.js';
import { holdProcess } from '../hold-process.js';
import type { Lease, LockSession } from '../lock.js';
import { validateKey } from '../session-base.js';
import { candidateDefaults, encodeLeaderValue, type PublishedInfo, withLock } from './info.js';
import { LeadershipHandle } from './leadership.js';
import type { CampaignOptions } from './types.js';

/**
 * Waits until `session` holds `key`, publishing the candidate's info with the lock. Transient backend
 * errors are retried with backoff (timed on `clock`); anything else (lost or destroyed session, permission)
 * rejects. `wallClock` only stamps `startedAt`.
 */
export async function campaignOn(
  session: LockSession,
  key: string,
  options: CampaignOptions,
  clock: Clock,
  wallClock: Clock,
): Promise<LeadershipHandle> {
  validateKey(key);
  const { signal } = options;
  if (signal?.aborted) throw campaignAborted(key, signal);
  if (session.leases().some((lease) => lease.key === key)) {
    throw new InvalidArgumentError(
      `session ${session.id} already holds '${key}': resign the current leadership before campaigning again`,
    );
  }
  const info = candidateDefaults(options.value, session.id, wallClock);
  const value = encodeLeaderValue(info);
  const release = holdProcess();
  try {
    return await campaignLoop(session, key, value, info, options.signal, clock);
  } finally {
    release();
  }
}

async function campaignLoop(
  session: LockSession,
  key: string,
  value: string,
  info: PublishedInfo,
  signal: AbortSignal | undefined,
  clock: Clock,
): Promise<LeadershipHandle> {
  for (let failures = 0; ; ) {
    let lease: Lease;
    try {
      lease = await session.acquire(key, signal ? { value, signal } : { value });
    } catch (error) {
      if (signal?.aborted) throw campaignAborted(key, signal);
      if (!(error instanceof BatonError && error.retryable) || session.signal.aborted) throw error;
      const pause = backoffDelay(failures++, {
        baseMs: 100,
        maxMs: Math.max(200, Math.min(5_000, session.ttlMs)),
      });
      await sleep(pause, signal ? { signal, clock } : { clock }).catch(() => {
        throw campaignAborted(key, signal!);
      });
      continue;
    }
    if (signal?.aborted) {
      // Won in the same moment the caller gave up: hand the lock straight back.
      await lease.release();
      throw campaignAborted(key, signal);
    }
    if (lease.signal.aborted) continue;
    return new LeadershipHandle(lease, withLock(info, lease.fence, lease.sessionId));
  }
}

function campaignAborted(key: string, signal: AbortSignal): AbortedError {
  return new AbortedError(`campaign for '${key}' aborted`, { cause: signal.reason });
}
