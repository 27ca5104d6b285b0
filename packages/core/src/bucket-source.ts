import { InvalidArgumentError } from './errors.js';
import type { LeaseLayout, LeaseLayoutRequest } from './lease-layout.js';
import type { Task, TaskFailure, TaskSource } from './task-source.js';

/**
 * A bucket lease as a source sees it. Buckets are contiguous ranges of the source's shards: bucket `b` of
 * `buckets` covers shards `[b·shards/buckets, (b+1)·shards/buckets)`.
 */
export interface BucketLeaseRef {
  /** Layout epoch the worker runs under ({@link LeaseLayout.epoch}). */
  readonly epoch: number;
  /** Number of buckets of the layout. */
  readonly buckets: number;
  /** This bucket, in `[0, buckets)`. */
  readonly bucket: number;
  /** Fence of the worker's lock on the bucket's key. */
  readonly fence: number;
}

/**
 * Why a bucket operation changed nothing:
 * - `stale`: a newer lease of this bucket has written to the source (this worker lost the bucket);
 * - `layout`: the table's lease layout is no longer the one the worker started with.
 */
export type BucketRefusal = 'stale' | 'layout';

/** Options of {@link BucketTaskSource.claimBucket}. */
export interface BucketClaimOptions {
  /** Kinds whose tasks the claim leaves alone (not claimed, no attempt counted). Default: none. */
  readonly skipKinds?: readonly string[];
}

/** Outcome of {@link BucketTaskSource.claimBucket}. */
export type BucketClaimResult =
  | {
      readonly ok: true;
      /**
       * The claimed tasks, `running`, each with a fresh claim token as its `fence`: a number from the
       * source that is higher than every token or fence the task carried before. Tokens identify attempts:
       * a task failed and claimed again under the same bucket lease gets a new, higher token.
       */
      readonly tasks: readonly Task[];
      /** Tasks found abandoned in their final attempt and marked `dead` instead of being run again. */
      readonly buried: number;
    }
  | { readonly ok: false; readonly reason: BucketRefusal };

/** The outcome of one claimed task, to be written by {@link BucketTaskSource.settle}. */
export type Settlement =
  | { readonly taskId: string; readonly fence: number; readonly kind: 'complete'; readonly result: unknown }
  | { readonly taskId: string; readonly fence: number; readonly kind: 'fail'; readonly failure: TaskFailure }
  /** Gives a claimed task back unrun (the worker is stopping or lost the bucket): its attempt is not counted. */
  | { readonly taskId: string; readonly fence: number; readonly kind: 'release' };

/** What happened to one {@link Settlement}. */
export type SettlementResult =
  | {
      readonly applied: true;
      readonly status: 'done' | 'dead' | 'pending' | 'failed';
      readonly nextRunAt?: Date;
    }
  /** The task no longer carries this claim (another claim replaced it, or it was already settled). */
  | { readonly applied: false; readonly reason: 'stale' };

/** Outcome of {@link BucketTaskSource.settle}: a result per settlement, in input order. */
export type SettleResult =
  | { readonly ok: true; readonly results: readonly SettlementResult[] }
  | { readonly ok: false; readonly reason: BucketRefusal };

/**
 * Outcome of {@link BucketTaskSource.claimBuckets}: a {@link BucketClaimResult} per lease, in the order of the
 * leases given.
 */
export type BucketClaimsResult = readonly BucketClaimResult[];

/** One bucket's settlements, for {@link BucketTaskSource.settleBuckets}. */
export interface BucketSettlements {
  /** The lease the tasks were claimed under. */
  readonly lease: BucketLeaseRef;
  readonly settlements: readonly Settlement[];
}

/**
 * A {@link TaskSource} that can also serve workers that lease buckets of tasks instead of single tasks: it
 * claims many due tasks of a bucket in one operation and writes many outcomes in another, every one fenced
 * by the bucket lease. Contract:
 *
 * 1. **The newest lease wins.** The source remembers, per bucket, the highest lock fence any operation
 *    carried. An operation with a lower fence changes nothing (`stale`); one with a higher fence raises it.
 *    So once a new holder of a bucket has claimed, a worker that lost the bucket (expiry, pause, partition)
 *    can write nothing in it any more.
 * 2. **The layout is checked in the same operation.** Every operation carries the layout epoch; after a
 *    layout change it changes nothing (`layout`).
 * 3. **Claims.** `claimBucket` takes up to `limit` due tasks of the bucket (pending or failed with `runAt`
 *    reached; running under an earlier lease of the bucket; running under this lease but claimed longer
 *    than the reclaim threshold ago), marks them running, counts an attempt, and gives each a new claim
 *    token. A task abandoned in its final attempt is marked dead instead. `claimBuckets` (optional) does the
 *    same for several held buckets in one operation, each task under its own bucket's lease.
 * 4. **Settlements.** A settlement applies only if the task is still `running` with exactly that token.
 *    Completing, failing (with the same backoff and dead-after-max-attempts rules as `fail`) and releasing
 *    an unrun claim (attempt not counted) are written in one operation for many tasks.
 */
export interface BucketTaskSource extends TaskSource {
  /** Number of shards tasks are spread over; bucket counts are powers of two that divide it. */
  readonly shards: number;
  /**
   * A name for the task table in lock keys (e.g. the PostgreSQL schema), so that two task tables sharing one
   * lock backend do not share bucket keys.
   */
  readonly namespace: string;
  /** The stored layout, or `null` when no worker has declared one yet. */
  leaseLayout(): Promise<LeaseLayout | null>;
  /**
   * Stores `request` as the table's layout when none is stored yet, and returns the stored layout (which
   * differs from `request` when another layout was declared first: the caller must then refuse to start).
   */
  declareLeaseLayout(request: LeaseLayoutRequest): Promise<LeaseLayout>;
  /**
   * Changes the table's layout (epoch + 1). Refused with `INVALID_ARGUMENT` while tasks are running, unless
   * `force` (tasks still running are then taken over by the next claim of the new layout). Writes of
   * workers that started under the old layout are refused from then on.
   */
  changeLeaseLayout(request: LeaseLayoutRequest, options?: { force?: boolean }): Promise<LeaseLayout>;
  /**
   * Which of `buckets` (of the layout's bucket count) hold a task that `claimBucket` would take now: one
   * cheap read for all of them, so an idle worker polls once per interval, not once per bucket.
   */
  dueBuckets(layout: LeaseLayout, buckets: readonly number[]): Promise<number[]>;
  /**
   * Claims up to `limit` due tasks of the bucket under `lease` (see the contract above), leaving alone the
   * tasks of `options.skipKinds`: kinds the worker's concurrency limits found full, which it would only have to
   * give back unrun.
   */
  claimBucket(
    lease: BucketLeaseRef,
    workerId: string,
    limit: number,
    options?: BucketClaimOptions,
  ): Promise<BucketClaimResult>;
  /**
   * Optional: claims up to `limit` due tasks across several held bucket leases in one operation, a result per
   * lease in input order. Each lease is decided exactly as `claimBucket(lease, workerId, …)` would decide it,
   * on its own:
   *
   * - a lease that is stale refuses its own bucket (`stale`) and only it: the others still claim; a lease of
   *   another layout refuses its bucket (`layout`); since all leases carry one layout, that is all of them;
   * - a lease with a newer fence than its bucket's stored one becomes the bucket's newest lease (running tasks
   *   of the bucket's earlier leases are taken over), whether or not the limit leaves any of its tasks to take;
   * - every task is claimed under the lease of its own bucket (tasks of a bucket are never claimed, nor
   *   buried, under another bucket's lease), with a fresh claim token above every token or fence it carried
   *   before; tasks abandoned in their final attempt are buried; `options.skipKinds` are left alone.
   *
   * **How the limit is shared.** `limit` counts the whole call (claimed plus buried tasks), not each bucket.
   * The leases are served in input order: the due tasks of `leases[0]`'s bucket first, then those of
   * `leases[1]`, and so on until the limit is reached, so a bucket's result holds fewer tasks than it has due
   * only if the limit ran out at it or before it. A result that took fewer than the limit left over when it
   * was reached means that bucket had nothing more due. A caller holding many buckets rotates their order from
   * call to call, so that no bucket waits behind the others.
   *
   * All leases carry the same epoch and bucket count and no bucket appears twice (`INVALID_ARGUMENT`
   * otherwise, checked by {@link checkBucketLeases}); an empty list claims nothing.
   *
   * A worker holding many buckets fills its free handler slots with one statement, where `claimBucket` stops at
   * a bucket's end; without this method it calls `claimBucket` once per bucket.
   */
  claimBuckets?(
    leases: readonly BucketLeaseRef[],
    workerId: string,
    limit: number,
    options?: BucketClaimOptions,
  ): Promise<BucketClaimsResult>;
  /** Writes the outcomes of tasks claimed under `lease`, all in one operation. */
  settle(lease: BucketLeaseRef, settlements: readonly Settlement[]): Promise<SettleResult>;
  /**
   * Optional: writes the settlements of several buckets in one operation, a result per batch in input order.
   * Each batch is decided exactly as `settle(batch.lease, batch.settlements)` would decide it, on its own:
   * a batch whose lease is stale is refused (`stale`) while the others apply. All leases carry the same
   * epoch and bucket count, no bucket appears twice and no task twice (`INVALID_ARGUMENT` otherwise).
   *
   * A worker holding many buckets settles them together, so its outcomes cost one write, not one per
   * bucket; without this method it calls `settle` once per bucket.
   */
  settleBuckets?(batches: readonly BucketSettlements[]): Promise<SettleResult[]>;
}

/**
 * Checks what {@link BucketTaskSource.settleBuckets} requires of its batches: one epoch and bucket count, each
 * bucket once. Throws `INVALID_ARGUMENT`.
 */
export function checkBucketBatches(batches: readonly BucketSettlements[]): void {
  if (!Array.isArray(batches)) throw new InvalidArgumentError('settleBuckets(): batches must be an array');
  checkSameLayout(
    batches.map((batch) => batch?.lease),
    'settleBuckets()',
    'batch',
    'batches',
  );
}

/**
 * Checks what {@link BucketTaskSource.claimBuckets} requires of its leases: an array, one epoch and bucket
 * count, each bucket once. Throws `INVALID_ARGUMENT`. (Each lease's own fields are the source's to check, as
 * for `claimBucket`.)
 */
export function checkBucketLeases(leases: readonly BucketLeaseRef[]): void {
  if (!Array.isArray(leases)) throw new InvalidArgumentError('claimBuckets(): leases must be an array');
  checkSameLayout(leases, 'claimBuckets()', 'lease', 'leases');
}

function checkSameLayout(
  leases: readonly BucketLeaseRef[],
  operation: string,
  item: string,
  items: string,
): void {
  const first = leases[0];
  const seen = new Set<number>();
  leases.forEach((lease, index) => {
    if (lease?.epoch !== first?.epoch || lease?.buckets !== first?.buckets) {
      throw new InvalidArgumentError(
        `${operation}: ${item} #${index} has another layout (epoch ${lease?.epoch}, ${lease?.buckets} buckets) ` +
          `than ${item} #0 (epoch ${first?.epoch}, ${first?.buckets} buckets)`,
      );
    }
    if (seen.has(lease.bucket))
      throw new InvalidArgumentError(`${operation}: bucket ${lease.bucket} appears in two ${items}`);
    seen.add(lease.bucket);
  });
}

/** The kinds `claimBucket` must leave alone, checked: throws `INVALID_ARGUMENT` for anything but strings. */
export function skipKindsOf(options: BucketClaimOptions | undefined): readonly string[] {
  const kinds = options?.skipKinds ?? [];
  if (!Array.isArray(kinds) || kinds.some((kind) => typeof kind !== 'string')) {
    throw new InvalidArgumentError(
      'claimBucket(): options.skipKinds must be an array of task kinds (strings)',
    );
  }
  return kinds;
}

/** True when `source` implements the bucket operations. */
export function isBucketTaskSource(source: TaskSource): source is BucketTaskSource {
  const s = source as Partial<BucketTaskSource>;
  return (
    typeof s.claimBucket === 'function' &&
    typeof s.settle === 'function' &&
    typeof s.dueBuckets === 'function' &&
    typeof s.declareLeaseLayout === 'function' &&
    typeof s.shards === 'number'
  );
}

/** The shard range `[from, to)` of bucket `bucket` of `buckets` over `shards` shards. */
export function bucketShards(shards: number, buckets: number, bucket: number): [from: number, to: number] {
  const width = shards / buckets;
  return [bucket * width, (bucket + 1) * width];
}

/** The bucket of `buckets` that holds `shard`. */
export function bucketOfShard(shards: number, buckets: number, shard: number): number {
  return Math.floor(shard / (shards / buckets));
}
