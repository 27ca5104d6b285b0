import type {
  BucketLeaseRef,
  BucketRefusal,
  BucketTaskSource,
  Settlement,
  SettlementResult,
  SettleResult,
} from '../../bucket-source.js';
import type { WorkerEnv } from '../env.js';
import { retryWrite } from '../write-retry.js';

/** What became of one settlement. */
export type SettleOutcome =
  | SettlementResult
  /** Its bucket's batch was refused: a newer lease of the bucket wrote (`stale`), or the layout changed. */
  | { readonly applied: false; readonly reason: BucketRefusal }
  /** Transport errors for longer than `writeRetryMs`: unknown whether it applied. */
  | { readonly applied: false; readonly reason: 'gave-up' }
  /** A lost reply, and the task was claimed again before the retry read it back: unknown whether it applied. */
  | { readonly applied: false; readonly reason: 'unknown' };

interface Pending {
  readonly lease: BucketLeaseRef;
  readonly settlement: Settlement;
  readonly resolve: (outcome: SettleOutcome) => void;
}

/** The settlements of one bucket lease within a write. */
interface Group {
  readonly lease: BucketLeaseRef;
  readonly pending: Pending[];
}

/**
 * Writes a worker's settlements, of all the buckets it holds, in batches, group-commit style: the first
 * settlement is written at once, and those that arrive while a write is in flight go together in the next
 * one, whatever their bucket. So an idle worker adds no delay, a busy one writes many outcomes per statement,
 * and a worker holding many buckets still has one write in flight, not one per bucket. A write covers each
 * bucket lease at most once (a settlement of a newer lease of a bucket already in the write waits for the next).
 *
 * Sources with {@link BucketTaskSource.settleBuckets} get one call per write; others one `settle` per bucket
 * in it. A retry after a transport error checks the tasks the source now refuses (one by one, or a bucket's
 * whole batch once a newer lease of the bucket has claimed): one that shows this claim's token and the
 * intended status was written by the lost attempt, and counts as applied.
 */
export class SettleBatcher {
  readonly #env: WorkerEnv;
  readonly #source: BucketTaskSource;
  readonly #maxBatch: number;
  readonly #unsettled = new Map<BucketLeaseRef, Set<Promise<SettleOutcome>>>();
  #queue: Pending[] = [];
  #flushing: Promise<void> | undefined;

  constructor(env: WorkerEnv, source: BucketTaskSource, maxBatch: number) {
    this.#env = env;
    this.#source = source;
    this.#maxBatch = maxBatch;
  }

  /** Queues a settlement of a task claimed under `lease`; resolves once it is written (or refused, or given up on). Never rejects. */
  settle(lease: BucketLeaseRef, settlement: Settlement): Promise<SettleOutcome> {
    const outcome = new Promise<SettleOutcome>((resolve) => {
      this.#queue.push({ lease, settlement, resolve });
      this.#flushing ??= this.#flush();
    });
    let unsettled = this.#unsettled.get(lease);
    if (!unsettled) {
      unsettled = new Set();
      this.#unsettled.set(lease, unsettled);
    }
    const tracked = unsettled;
    tracked.add(outcome);
    void outcome.then(() => {
      tracked.delete(outcome);
      if (tracked.size === 0 && this.#unsettled.get(lease) === tracked) this.#unsettled.delete(lease);
    });
    return outcome;
  }

  /** Resolves once every settlement queued so far under `lease` is written. */
  async idle(lease: BucketLeaseRef): Promise<void> {
    for (;;) {
      const unsettled = this.#unsettled.get(lease);
      if (!unsettled || unsettled.size === 0) return;
      await Promise.all(unsettled);
    }
  }

  /**
   * Writes batches until the queue is empty. It clears `#flushing` itself, in the same synchronous step that
   * sees the queue empty: a settlement queued after that starts a new flush, and none can slip in between
   * (clearing it in a `.finally()` would leave one a microtask late, queued behind a flush that has ended).
   */
  async #flush(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const groups = this.#nextWrite();
        const outcomes = await this.#write(groups);
        groups.forEach((group, g) => {
          group.pending.forEach((pending, i) => {
            pending.resolve(outcomes[g]![i]!);
          });
        });
      }
    } finally {
      this.#flushing = undefined;
    }
  }

  /**
   * Takes up to `maxBatch` queued settlements, grouped by bucket lease, one lease per bucket, and each task
   * once: two attempts of one task (the worker reclaimed its own claim after a pause longer than the reclaim
   * threshold, and both handlers ended) go in successive writes, since a source refuses a write that settles a
   * task twice.
   */
  #nextWrite(): Group[] {
    const groups = new Map<number, Group>();
    const tasks = new Set<string>();
    const later: Pending[] = [];
    let taken = 0;
    for (const pending of this.#queue) {
      const group = groups.get(pending.lease.bucket);
      const { taskId } = pending.settlement;
      if (taken >= this.#maxBatch || (group && group.lease !== pending.lease) || tasks.has(taskId)) {
        later.push(pending);
        continue;
      }
      if (group) group.pending.push(pending);
      else groups.set(pending.lease.bucket, { lease: pending.lease, pending: [pending] });
      tasks.add(taskId);
      taken++;
    }
    this.#queue = later;
    return [...groups.values()];
  }

  async #write(groups: readonly Group[]): Promise<SettleOutcome[][]> {
    const refusedAll = (reason: 'gave-up') =>
      groups.map((group) => group.pending.map((): SettleOutcome => ({ applied: false, reason })));
    try {
      const written = await retryWrite(this.#env, undefined, async (attempt) => {
        const answers = await this.#send(groups);
        const outcomes = groups.map((group, g) => {
          const answer = answers[g]!;
          return answer.ok
            ? [...answer.results]
            : group.pending.map((): SettleOutcome => ({ applied: false, reason: answer.reason }));
        });
        if (attempt === 0) return outcomes;
        // A retry refused (a bucket's batch as a whole: a newer lease of it has claimed, or the layout changed
        // since) may hide this write's own earlier, applied attempt.
        return Promise.all(
          outcomes.map((list, g) =>
            Promise.all(list.map((outcome, i) => this.#confirm(groups[g]!.pending[i]!.settlement, outcome))),
          ),
        );
      });
      return written ?? refusedAll('gave-up');
    } catch (error) {
      this.#env.observe({ type: 'error', error, phase: 'write' });
      return refusedAll('gave-up');
    }
  }

  /** One `settleBuckets` call for the whole write where the source has it, else one `settle` per bucket. */
  async #send(groups: readonly Group[]): Promise<readonly SettleResult[]> {
    const batches = groups.map((group) => ({
      lease: group.lease,
      settlements: group.pending.map((p) => p.settlement),
    }));
    if (this.#source.settleBuckets) {
      const answers = await this.#source.settleBuckets(batches);
      this.#env.observe({ type: 'settle-batch' });
      return answers;
    }
    return Promise.all(
      batches.map(async (batch) => {
        const answer = await this.#source.settle(batch.lease, batch.settlements);
        this.#env.observe({ type: 'settle-batch' });
        return answer;
      }),
    );
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
