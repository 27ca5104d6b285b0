// The chaos checker's bucket-mode checks. In bucket mode a worker leases buckets of tasks (lock keys
// `buckets/<schema>/<count>/b/<n>`), claims many tasks of a bucket in one statement and settles their
// outcomes in batches. A task's fence is then a claim token from the task table's sequence, not a lock
// fence; the lock fence lives in the source's `bucket_leases` row of the bucket, which every claim raises or
// confirms and every settle must still find there. The harness records each write of that row (a trigger,
// `bucket_leases` in the side schema), in one id sequence with the tasks' transitions.

/**
 * @typedef {object} BucketLeaseRecord one write of a bucket's row in the source's `bucket_leases`
 * @property {number} id position in the sequence shared with the transitions
 * @property {number} epoch layout epoch
 * @property {number} bucket
 * @property {number} lockFence the newest lock fence that wrote to the bucket
 * @property {number} sinceToken the first claim token of that lease
 * @property {string | null} workerId
 * @property {string} txid the transaction that wrote it
 * @property {number} at epoch ms (database clock)
 *
 * @typedef {object} LeaseLayout the task table's stored lease layout
 * @property {'task' | 'bucket'} mode
 * @property {number | null} buckets
 * @property {number} epoch
 */

/** Number of shards the PostgreSQL source spreads tasks over. */
export const SHARDS = 1024;

/** The lock key of bucket `bucket` (without the backend's prefix), as the worker names it. */
export function bucketKey(namespace, buckets, bucket, prefix = 'buckets') {
  return `${prefix}/${namespace}/${buckets}/b/${bucket}`;
}

/** The bucket of `buckets` that holds `shard`. */
export function bucketOfShard(shard, buckets, shards = SHARDS) {
  return Math.floor(shard / (shards / buckets));
}

/** A settle: a task's status changed from `running` under the claim's own token. */
function isSettle(t) {
  return t.oldStatus === 'running' && t.newStatus !== 'running' && t.newFence === t.oldFence;
}

/**
 * The bucket-mode checks. `fail(invariant, message)` records a violation; `granted(key, fence)` says whether
 * the lock server granted `fence` for `key` (exactly, or within a lease's range of indexes on Consul).
 * Returns the bucket metrics of the report.
 *
 * - fence-order: every lock fence the source recorded for a bucket is one the lock server granted for that
 *   bucket's key.
 * - bucket-fence: per bucket, the recorded lock fence never decreases; a new lease's first token is above
 *   every token drawn in the bucket before it; every claim raised or confirmed its bucket's record in its own
 *   transaction, as the bucket's newest record, with a token at least that lease's first; every settle
 *   applied while the bucket's newest lock fence was the one the task's claim ran under.
 *
 * @param {{ transitions: import('./checker.mjs').Transition[], bucketLeases: BucketLeaseRecord[],
 *   layout: LeaseLayout, namespace: string, bucketKeyPrefix?: string, shards?: number }} data
 * @param {(invariant: string, message: string) => void} fail
 * @param {(key: string, fence: number) => boolean} granted
 */
export function checkBuckets(data, fail, granted) {
  const { layout, namespace } = data;
  const buckets = layout.buckets;
  const shards = data.shards ?? SHARDS;
  const prefix = data.bucketKeyPrefix ?? 'buckets';
  const records = [...data.bucketLeases].sort((a, b) => a.id - b.id);
  const transitions = [...data.transitions].sort((a, b) => a.id - b.id);
  const bucketOf = (t) => bucketOfShard(t.shard, buckets, shards);

  // The records and transitions of each bucket, merged in sequence order.
  /** @type {Map<number, Array<{ record?: BucketLeaseRecord, transition?: import('./checker.mjs').Transition }>>} */
  const timeline = new Map();
  const push = (bucket, entry) => {
    const list = timeline.get(bucket);
    if (list) list.push(entry);
    else timeline.set(bucket, [entry]);
  };
  for (const record of records) {
    if (record.epoch !== layout.epoch) {
      fail(
        'bucket-fence',
        `bucket ${record.bucket}: lease record of epoch ${record.epoch} under layout epoch ${layout.epoch}`,
      );
      continue;
    }
    if (!(record.bucket >= 0 && record.bucket < buckets)) {
      fail(
        'bucket-fence',
        `lease record of bucket ${record.bucket}, outside the layout's ${buckets} buckets`,
      );
      continue;
    }
    push(record.bucket, { id: record.id, record });
  }
  for (const transition of transitions) push(bucketOf(transition), { id: transition.id, transition });

  // The lease record each claim ran under, by task and token: settles are judged against it.
  const claimRecord = new Map();
  let leaseChanges = 0;
  let claimStatements = 0;
  let settles = 0;
  for (const [bucket, entries] of timeline) {
    entries.sort((a, b) => a.id - b.id);
    const key = bucketKey(namespace, buckets, bucket, prefix);
    /** @type {BucketLeaseRecord | undefined} */
    let newest;
    let maxToken = Number.NEGATIVE_INFINITY;
    for (const { record, transition } of entries) {
      if (record) {
        claimStatements++;
        if (!granted(key, record.lockFence)) {
          fail(
            'fence-order',
            `${key}: the source recorded lock fence ${record.lockFence} (worker ${record.workerId}), which the lock server never granted`,
          );
        }
        if (newest && record.lockFence < newest.lockFence) {
          fail(
            'bucket-fence',
            `bucket ${bucket}: lock fence ${record.lockFence} (worker ${record.workerId}) recorded after ${newest.lockFence} (worker ${newest.workerId}): an older lease wrote after a newer one`,
          );
        } else if (!newest || record.lockFence > newest.lockFence) {
          leaseChanges++;
          if (!(record.sinceToken > maxToken) || (newest && !(record.sinceToken > newest.sinceToken))) {
            fail(
              'bucket-fence',
              `bucket ${bucket}: the lease of lock fence ${record.lockFence} starts at token ${record.sinceToken}, not above the tokens drawn before it (up to ${Math.max(maxToken, newest?.sinceToken ?? 0)})`,
            );
          }
        } else if (record.sinceToken !== newest.sinceToken) {
          fail(
            'bucket-fence',
            `bucket ${bucket}: the lease of lock fence ${record.lockFence} changed its first token from ${newest.sinceToken} to ${record.sinceToken}`,
          );
        }
        newest = record;
        maxToken = Math.max(maxToken, record.sinceToken);
        continue;
      }
      const t = transition;
      if (t.newFence !== null && t.newFence !== t.oldFence) {
        maxToken = Math.max(maxToken, t.newFence);
        if (!newest) {
          fail(
            'bucket-fence',
            `task ${t.taskId}: claimed under token ${t.newFence} in bucket ${bucket}, which has no lease record`,
          );
          continue;
        }
        claimRecord.set(`${t.taskId}/${t.newFence}`, newest);
        if (newest.txid !== t.txid) {
          fail(
            'bucket-fence',
            `task ${t.taskId}: claimed under token ${t.newFence} in bucket ${bucket} by a transaction that did not ` +
              `write the bucket's newest lease record (lock fence ${newest.lockFence}, ${newest.workerId})`,
          );
          continue;
        }
        if (t.newFence < newest.sinceToken) {
          fail(
            'bucket-fence',
            `task ${t.taskId}: claimed under token ${t.newFence}, below the first token ${newest.sinceToken} of its lease (bucket ${bucket}, lock fence ${newest.lockFence})`,
          );
        }
        if (t.workerId !== newest.workerId) {
          fail(
            'bucket-fence',
            `task ${t.taskId}: claimed by ${t.workerId} under the lease record of ${newest.workerId} (bucket ${bucket}, lock fence ${newest.lockFence})`,
          );
        }
      } else if (isSettle(t)) {
        settles++;
        const claim = claimRecord.get(`${t.taskId}/${t.oldFence}`);
        if (!claim) {
          fail(
            'bucket-fence',
            `task ${t.taskId}: settled (${t.newStatus}) under token ${t.oldFence}, which no bucket claim drew`,
          );
        } else if (!newest || newest.lockFence !== claim.lockFence) {
          fail(
            'bucket-fence',
            `task ${t.taskId}: settled (${t.newStatus}) under token ${t.oldFence} of the lease with lock fence ` +
              `${claim.lockFence} (${claim.workerId}) while bucket ${bucket}'s newest lock fence was ${newest?.lockFence} (${newest?.workerId})`,
          );
        }
      }
    }
  }
  return { bucketLeaseRecords: claimStatements, bucketLeaseChanges: leaseChanges, settles };
}
