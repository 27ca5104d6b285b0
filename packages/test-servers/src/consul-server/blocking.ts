/**
 * Consul's blocking queries (`agent/blockingquery`): with `?index=N` the query re-runs on every change to the
 * tables it reads and returns once its result index exceeds N, or when `?wait` (default 5 min, capped, plus
 * up to wait/16 of jitter) runs out, with the last result. Index 0 never blocks. A query that keeps finding
 * nothing keeps blocking even while unrelated writes move the table index (Consul's `ErrNotFound` rule).
 */
import type { Clock } from '@baton/core';
import { nsToMs } from './go-duration.js';
import type { StateStore, Table } from './state.js';

/** A query result: the index to compare against `?index`, and whether nothing was found. */
export interface IndexedResult {
  index: number;
  readonly notFound?: boolean;
}

/** How long and on what a blocking query waits. */
export interface BlockingOptions {
  readonly store: StateStore;
  readonly clock: Clock;
  readonly tables: readonly Table[];
  readonly minIndex: number;
  readonly waitNs: bigint | undefined;
  readonly defaultWaitMs: number;
  readonly maxWaitMs: number;
  readonly signal: AbortSignal;
  /** Source of jitter in [0, 1). */
  readonly random?: () => number;
}

/** The wait a blocking query will use: `?wait` clamped to the maximum, the default when absent or ≤ 0. */
export function effectiveWaitMs(
  waitNs: bigint | undefined,
  defaultWaitMs: number,
  maxWaitMs: number,
): number {
  const requested = waitNs === undefined ? 0 : nsToMs(waitNs);
  if (requested > maxWaitMs) return maxWaitMs;
  if (requested <= 0) return Math.min(defaultWaitMs, maxWaitMs);
  return requested;
}

/** Runs `run` once, or as a blocking query when `minIndex > 0`. The result's index is never below 1. */
export async function blockingQuery<R extends IndexedResult>(
  options: BlockingOptions,
  run: () => R,
): Promise<R> {
  const runOnce = (): R => {
    const result = run();
    if (result.index < 1) result.index = 1;
    return result;
  };
  if (options.minIndex === 0) return runOnce();

  const base = effectiveWaitMs(options.waitNs, options.defaultWaitMs, options.maxWaitMs);
  const timeoutMs = base + Math.floor((options.random ?? Math.random)() * (base / 16));
  const { clock, store, signal } = options;
  const tables = new Set<Table>(options.tables);

  let stop: (() => void) | undefined;
  let stopped = signal.aborted;
  const timer = clock.setTimeout(() => {
    stopped = true;
    stop?.();
  }, timeoutMs);
  const onAbort = () => {
    stopped = true;
    stop?.();
  };
  signal.addEventListener('abort', onAbort, { once: true });

  try {
    let minIndex = options.minIndex;
    let notFound = false;
    for (;;) {
      const result = runOnce();
      if (result.notFound) {
        if (notFound) minIndex = result.index;
        notFound = true;
      }
      if (result.index > minIndex || stopped) return result;
      // Subscribe in the same tick as the query ran: commits are synchronous, so no change can slip between.
      const changed = await new Promise<boolean>((resolve) => {
        const unsubscribe = store.onChange((touched) => {
          for (const table of touched) {
            if (tables.has(table)) {
              unsubscribe();
              stop = undefined;
              resolve(true);
              return;
            }
          }
        });
        stop = () => {
          unsubscribe();
          stop = undefined;
          resolve(false);
        };
      });
      if (!changed) return result;
    }
  } finally {
    clock.clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
  }
}
