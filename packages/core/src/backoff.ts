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
