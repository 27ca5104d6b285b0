/** Parameters of an exponential backoff with full jitter. */
export interface BackoffOptions {
  /** Delay scale of the first retry, in ms. */
  baseMs?: number;
  /** Upper bound of any single delay, in ms. */
  maxMs?: number;
  /** Source of randomness in [0, 1); injectable for deterministic tests. */
  random?: () => number;
}

/**
 * Delay before retry number `attempt` (0-based): uniformly random in [base·2^attempt / 2, base·2^attempt],
 * capped at `maxMs`. Half-jitter keeps retries spread out without ever retrying immediately.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const { baseMs = 50, maxMs = 5_000, random = Math.random } = options;
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return ceiling / 2 + random() * (ceiling / 2);
}

/** `ms` ± `fraction`·`ms`, uniformly at random: spreads periodic work of many processes apart. */
export function jitter(ms: number, fraction = 0.2, random: () => number = Math.random): number {
  return ms * (1 - fraction + 2 * fraction * random());
}

/**
 * Delay before retry number `attempt` of a session's background work (a deferred release, a key monitor, a
 * place left in a line), scaled to its TTL so that several retries fit before the session could expire:
 * first about TTL/10 (10 ms to 1 s), never above TTL/2 (and at least 100 ms).
 */
export function sessionRetryDelay(attempt: number, ttlMs: number): number {
  return backoffDelay(attempt, {
    baseMs: Math.max(10, Math.min(1_000, ttlMs / 10)),
    maxMs: Math.max(100, ttlMs / 2),
  });
}

/**
 * Delay before retry number `attempt` of a release while the session ends (`destroy()` settling what is
 * left): quick at first (50 ms), never above TTL/4 (and at least 100 ms).
 */
export function finalReleaseDelay(attempt: number, ttlMs: number): number {
  return backoffDelay(attempt, { baseMs: 50, maxMs: Math.max(100, ttlMs / 4) });
}
