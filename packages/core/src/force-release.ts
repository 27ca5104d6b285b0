import { InvalidArgumentError } from './errors.js';
import type { LockHolder, LockProvider } from './lock.js';

/**
 * What a forced release risks, one sentence each: the CLI prints them before `locks release --force` acts,
 * and the web console shows them in its confirmation.
 */
export const FORCED_RELEASE_RISKS: readonly string[] = [
  'The holder is not told. It keeps believing it holds the lock until its next renewal or monitor check, and may keep working until then.',
  "Its fenced writes stay valid until someone else acquires the key: the next holder's fence is higher, and only systems that check fences reject the old holder from then on.",
  'Writes to systems that do not check the fence are not protected at all.',
];

/** What a forced release did. */
export interface ForcedRelease {
  key: string;
  /** False: nobody held the key, nothing was released. */
  released: boolean;
  /** The holder just before the release (null: none). */
  previousHolder: LockHolder | null;
}

/** Whether `provider` can force-release a lock (capability `forceRelease`). */
export function canForceRelease(
  provider: LockProvider,
): provider is LockProvider & { forceRelease(key: string): Promise<boolean> } {
  return Boolean(provider.capabilities.forceRelease && provider.forceRelease);
}

/**
 * The operator's forced release, shared by `baton locks release --force` and the web console: reads the
 * holder, then clears it with the provider's `forceRelease`. Throws `INVALID_ARGUMENT` when the backend
 * cannot force-release.
 */
export async function forceReleaseLock(provider: LockProvider, key: string): Promise<ForcedRelease> {
  if (!canForceRelease(provider)) {
    throw new InvalidArgumentError(`the '${provider.backend}' backend does not support forced release`);
  }
  const previousHolder = await provider.getHolder(key);
  const released = await provider.forceRelease(key);
  return { key, released, previousHolder };
}
