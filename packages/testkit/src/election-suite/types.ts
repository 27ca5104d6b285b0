import type { LockSuiteOptions } from '../lock-suite/types.js';

/**
 * Timing and sizes for {@link leaderElectionSuite}. The lock suite's options object can be passed as is:
 * only `expiryBoundMs` and `granularityMs` are read from it.
 */
export interface ElectionSuiteOptions extends Pick<LockSuiteOptions, 'expiryBoundMs' | 'granularityMs'> {
  /**
   * Upper bound, in ms, from `resign()` until a waiting campaigner leads. Default: half the session TTL
   * with a native watch, three quarters of it when the backend polls (plus `granularityMs`).
   */
  resignHandoverBoundMs?: number;
  /** Contended group: participants campaigning at once (default 4), terms to elect (default 16), and how
   * many of those terms end in a crash instead of a resignation (default 2). */
  contention?: { participants?: number; terms?: number; crashes?: number };
}
