import type { LockProvider, Semaphore } from '@baton/core';
import type { LockSuiteOptions } from '../lock-suite/types.js';

/** Makes the semaphore under test; {@link semaphoreSuite} defaults to `semaphore()` from `@baton/core`. */
export type SemaphoreFactory = (provider: LockProvider, name: string, limit: number) => Semaphore;

/**
 * Timing and sizes for {@link semaphoreSuite}. The lock suite's options object can be passed as is: only
 * `expiryBoundMs`, `granularityMs` and `lockDelayMs` are read from it.
 */
export interface SemaphoreSuiteOptions
  extends Pick<LockSuiteOptions, 'expiryBoundMs' | 'granularityMs' | 'lockDelayMs'> {
  /** The semaphore implementation under test. Default: `semaphore()` from `@baton/core`. */
  semaphore?: SemaphoreFactory;
  /**
   * Contended group: limit (default 3), contenders (default 6), permits to grant (default 30), and how many
   * of those end in a crash of the holder instead of a release (default 2).
   */
  contention?: { limit?: number; contenders?: number; grants?: number; crashes?: number };
}
