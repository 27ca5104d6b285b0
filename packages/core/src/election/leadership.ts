import { BatonError, isBatonError, LeaseLostError, LeaseReleasedError } from '../errors.js';
import type { Lease } from '../lock.js';
import { encodeLeaderValue, mergeInfo, withLock } from './info.js';
import type { CandidateInfo, LeaderInfo, Leadership } from './types.js';

/** The {@link Leadership} implementation: a lease plus a signal that ends no later than the lease. */
export class LeadershipHandle implements Leadership {
  readonly key: string;
  readonly term: number;
  readonly lease: Lease;
  #value: LeaderInfo;
  readonly #controller = new AbortController();
  #proclaims: Promise<unknown> = Promise.resolve();
  #resigning: Promise<boolean> | undefined;

  constructor(lease: Lease, value: LeaderInfo) {
    this.key = lease.key;
    this.term = lease.fence;
    this.lease = lease;
    this.#value = value;
    const onLeaseEnd = () => this.relinquish(leaseEndReason(lease));
    if (lease.signal.aborted) onLeaseEnd();
    else lease.signal.addEventListener('abort', onLeaseEnd, { once: true });
  }

  get value(): LeaderInfo {
    return this.#value;
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  resign(): Promise<boolean> {
    this.#resigning ??= (async () => {
      this.relinquish(new LeaseReleasedError(`resigned leadership of '${this.key}' (term ${this.term})`));
      return this.lease.release();
    })();
    return this.#resigning;
  }

  proclaim(update: CandidateInfo): Promise<LeaderInfo> {
    const run = async (): Promise<LeaderInfo> => {
      if (this.signal.aborted) {
        throw new LeaseLostError(
          `cannot proclaim on '${this.key}': leadership (term ${this.term}) has ended`,
          {
            cause: this.signal.reason,
          },
        );
      }
      const next = mergeInfo(this.#value, update);
      try {
        await this.lease.publish(encodeLeaderValue(next));
      } catch (error) {
        if (isBatonError(error, 'LEASE_LOST')) this.relinquish(error);
        throw error;
      }
      this.#value = withLock(next, this.term, this.lease.sessionId);
      return this.#value;
    };
    const result = this.#proclaims.then(run, run);
    this.#proclaims = result.catch(() => undefined);
    return result;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.resign();
  }

  /**
   * @internal Ends this participant's belief in its leadership without releasing the lock (yet). Used to
   * stop the leader's work before the lock is handed over. Idempotent; the first reason wins.
   */
  relinquish(reason: BatonError): void {
    if (!this.#controller.signal.aborted) this.#controller.abort(reason);
  }
}

function leaseEndReason(lease: Lease): BatonError {
  const reason: unknown = lease.signal.reason;
  return reason instanceof BatonError
    ? reason
    : new LeaseLostError(`leadership of '${lease.key}' lost`, { cause: reason });
}
