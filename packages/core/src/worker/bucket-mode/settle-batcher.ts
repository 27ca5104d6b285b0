import type {
  BucketLeaseRef,
  BucketRefusal,
  BucketTaskSource,
  Settlement,
  SettlementResult,
} from '../../bucket-source.js';
import type { WorkerEnv } from '../env.js';
import { retryWrite } from '../write-retry.js';

/** What became of one settlement. */
export type SettleOutcome =
  | SettlementResult
  /** The whole batch was refused: a newer lease of the bucket wrote (`stale`), or the layout changed. */
  | { readonly applied: false; readonly reason: BucketRefusal }
  /** Transport errors for longer than `writeRetryMs`: unknown whether it applied. */
  | { readonly applied: false; readonly reason: 'gave-up' }
  /** A lost reply, and the task was claimed again before the retry read it back: unknown whether it applied. */
  | { readonly applied: false; readonly reason: 'unknown' };

interface Pending {
  readonly settlement: Settlement;
  readonly resolve: (outcome: SettleOutcome) => void;
}

/**
 * Writes one bucket's settlements in batches, group-commit style: the first settlement is written at once,
 * and those that arrive while a write is in flight go together in the next one. So an idle worker adds no
 * delay, and a busy one writes many outcomes per statement. A retry after a transport error checks the tasks
 * the source now refuses (one by one, or the whole batch once a newer lease of the bucket has claimed): one
 * that shows this claim's token and the intended status was written by the lost attempt, and counts as
 * applied.
 */
export class SettleBatcher {
  readonly #env: WorkerEnv;
  readonly #source: BucketTaskSource;
  readonly #lease: BucketLeaseRef;
  readonly #maxBatch: number;
  #queue: Pending[] = [];
  #flushing: Promise<void> | undefined;

  constructor(env: WorkerEnv, source: BucketTaskSource, lease: BucketLeaseRef, maxBatch: number) {
    this.#env = env;
    this.#source = source;
    this.#lease = lease;
    this.#maxBatch = maxBatch;
  }

  /** Queues a settlement; resolves once it is written (or refused, or given up on). Never rejects. */
  settle(settlement: Settlement): Promise<SettleOutcome> {
    return new Promise((resolve) => {
      this.#queue.push({ settlement, resolve });
      this.#flushing ??= this.#flush();
    });
  }

  /** Resolves once everything queued so far is written. */
  async idle(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  /**
   * Writes batches until the queue is empty. It clears `#flushing` itself, in the same synchronous step that
   * sees the queue empty: a settlement queued after that starts a new flush, and none can slip in between
   * (clearing it in a `.finally()` would leave one a microtask late, queued behind a flush that has ended).
   */
  async #flush(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, this.#maxBatch);
        const outcomes = await this.#write(batch.map((p) => p.settlement));
        batch.forEach((pending, i) => {
          pending.resolve(outcomes[i]!);
        });
      }
    } finally {
      this.#flushing = undefined;
    }
  }

  async #write(settlements: readonly Settlement[]): Promise<SettleOutcome[]> {
    try {
      const written = await retryWrite(this.#env, undefined, async (attempt) => {
        const answer = await this.#source.settle(this.#lease, settlements);
        this.#env.observe({ type: 'settle-batch' });
        const outcomes: readonly SettleOutcome[] = answer.ok
          ? answer.results
          : settlements.map((): SettleOutcome => ({ applied: false, reason: answer.reason }));
        if (attempt === 0) return [...outcomes];
        // A retry refused as a whole (a newer lease of the bucket has claimed, or the layout changed since)
        // may hide this batch's own earlier write as much as a refused settlement does.
        return Promise.all(outcomes.map((outcome, i) => this.#confirm(settlements[i]!, outcome)));
      });
      return written ?? settlements.map((): SettleOutcome => ({ applied: false, reason: 'gave-up' }));
    } catch (error) {
      this.#env.observe({ type: 'error', error, phase: 'write' });
      return settlements.map((): SettleOutcome => ({ applied: false, reason: 'gave-up' }));
    }
  }

  /** After a lost reply: a refusal may hide this settlement's own earlier, applied write. */
  async #confirm(settlement: Settlement, result: SettleOutcome): Promise<SettleOutcome> {
    if (result.applied) return result;
    const current = await this.#source.get(settlement.taskId);
    if (current?.fence !== settlement.fence) return { applied: false, reason: 'unknown' };
    const expected: Record<Settlement['kind'], readonly string[]> = {
      complete: ['done'],
      fail: ['failed', 'dead'],
      release: ['pending', 'failed'],
    };
    if (!expected[settlement.kind].includes(current.status)) return result;
    const status = current.status as 'done' | 'dead' | 'pending' | 'failed';
    return status === 'failed' && settlement.kind === 'fail'
      ? { applied: true, status, nextRunAt: current.runAt }
      : { applied: true, status };
  }
}
