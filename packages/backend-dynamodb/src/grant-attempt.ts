import { randomUUID } from 'node:crypto';
import type { Acquisition, Clock, TimerHandle } from '@baton/core';
import type { KnownKeys } from './known-keys.js';
import type { ObservationBook } from './observations.js';
import type { LockRecord } from './record.js';
import type { CallLimits } from './requester.js';
import type { EpochExpectation, GrantExpectation, GrantInput, LineGrant, LockTable } from './table.js';
import { RecordVersions } from './versions.js';

/** Per-lease bookkeeping of a DynamoDB session. */
export interface DynamoLeaseState {
  /** Record versions this holder wrote that may be the item's current one. */
  versions: RecordVersions;
  /** Monotonic time at which the last write known to have applied was *sent*. */
  lastGoodStart: number;
  deadlineTimer: TimerHandle | undefined;
  releasing: boolean;
}

/** What one acquisition needs from its session and provider. */
export interface GrantContext {
  table: LockTable;
  clock: Clock;
  observations: ObservationBook;
  knownKeys: KnownKeys;
  /** The session taking the key. */
  owner: { id: string; name: string | undefined; ttlMs: number; lockDelayMs: number };
  /** How long a contender must see `record` unchanged before taking it (holder's lease, margin, delay). */
  takeoverWaitMs(record: LockRecord): number;
  /** Budget of one request. */
  limits(): CallLimits;
}

/** What {@link GrantAttempt.decide} concluded from a record. */
export type Decision = Acquisition<DynamoLeaseState> | 'held' | 'retry';

/** Most grant writes of one attempt whose record versions are remembered (a waiter may make many). */
const MAX_REMEMBERED = 64;

/**
 * One acquisition of one key: the rules that turn what was read into the next conditional write, and the
 * record version of every grant write it sent (each write sets a fresh one; retries of a write reuse it),
 * so that a write that failed on our side but was applied is recognised as ours, and the lease anchored at
 * that write's send time. `line` says how the item's line of waiters counts (see {@link LineGrant}).
 */
export class GrantAttempt {
  readonly key: string;
  readonly #context: GrantContext;
  readonly #value: string | undefined;
  /** Send time of each grant write, by the record version it sets. */
  readonly #sent = new Map<string, number>();
  #line: LineGrant;

  constructor(context: GrantContext, key: string, value: string | undefined, line: LineGrant) {
    this.#context = context;
    this.key = key;
    this.#value = value;
    this.#line = line;
  }

  /** Switches how the line counts for the following writes (the attempt lined up, or moved to the front). */
  set line(line: LineGrant) {
    this.#line = line;
  }

  /**
   * The first request of an acquisition that assumes the key is free: one conditional write (in counter
   * mode also for a new key). In epoch mode a key this provider has not seen is probably new: create the
   * item, draw an epoch, take it (three requests); if it exists after all, go on as for a known key.
   */
  async assumeFree(): Promise<Acquisition<DynamoLeaseState> | null> {
    const { table, knownKeys } = this.#context;
    if (table.fenceMode === 'epoch' && !knownKeys.has(this.key)) {
      const created = await this.#createThenGrant();
      if (created !== 'exists') return created;
    }
    return this.#grant({ kind: 'free' });
  }

  /**
   * Epoch mode, no item: create it free and without a fence span, then draw the epoch (now that the item
   * exists, above the epoch of every deleted incarnation) and take it on the version created. `exists`
   * when the item was there already; `null` when someone took the new item first.
   */
  async #createThenGrant(): Promise<Acquisition<DynamoLeaseState> | null | 'exists'> {
    const { table, knownKeys } = this.#context;
    const rvn = randomUUID();
    const created = await table.createFree(this.key, rvn, this.#context.limits());
    knownKeys.add(this.key);
    if (!created) return 'exists';
    return this.#grantInEpoch({ kind: 'version', rvn }, 0);
  }

  /**
   * Decides from a consistent read what to do, and does it: an earlier write of this attempt that was
   * applied after all makes the key ours; a missing or free item is granted; a held one is taken over only
   * once its record version stayed unchanged for the takeover window on this process's clock. `held` means
   * "not now", `retry` that a conditional write lost a race (read again).
   */
  async decide(record: LockRecord | null, seenAt: number): Promise<Decision> {
    const { knownKeys, observations, table } = this.#context;
    const ours = this.ours(record);
    if (ours) return ours;
    let acquisition: Acquisition<DynamoLeaseState> | null;
    if (!record) {
      // First use of the key, or the item was deleted. Epoch mode starts above every fence handed out so
      // far; counter mode creates it with fence 1 (items must never be deleted in that mode).
      knownKeys.forget(this.key);
      observations.forget(this.key);
      if (table.fenceMode === 'epoch') {
        const created = await this.#createThenGrant();
        acquisition = created === 'exists' ? null : created;
      } else {
        acquisition = await this.#grant({ kind: 'free' });
      }
    } else if (record.owner === undefined && record.holdMs === 0) {
      knownKeys.add(this.key);
      observations.forget(this.key);
      acquisition = await this.#takeSeen(record, { kind: 'free' });
    } else {
      knownKeys.add(this.key);
      const unchangedFor = observations.observe(this.key, record.rvn, seenAt);
      if (unchangedFor < this.#context.takeoverWaitMs(record)) return 'held';
      acquisition = await this.#takeSeen(record, { kind: 'version', rvn: record.rvn });
    }
    return acquisition ?? 'retry';
  }

  /**
   * When `record` carries this attempt's version, an earlier grant of the attempt was applied although its
   * answer was lost: the acquisition, anchored at the attempt's first request (no later than the one that
   * applied). `undefined` otherwise.
   */
  ours(record: LockRecord | null): Acquisition<DynamoLeaseState> | undefined {
    const sentAt = record ? this.#sent.get(record.rvn) : undefined;
    return record && sentAt !== undefined ? this.granted(record, sentAt) : undefined;
  }

  /** The acquisition a granted record stands for, anchored at the send time of the request that took it. */
  granted(record: LockRecord, sentAt: number): Acquisition<DynamoLeaseState> {
    this.#context.observations.forget(this.key);
    this.#context.knownKeys.add(this.key);
    return {
      fence: record.fence,
      value: this.#value,
      // Contenders cannot have seen the new record version before the request that wrote it was sent.
      state: {
        versions: new RecordVersions(record.rvn),
        lastGoodStart: sentAt,
        deadlineTimer: undefined,
        releasing: false,
      },
    };
  }

  async #write(
    write: (input: GrantInput, limits: CallLimits) => Promise<LockRecord | null>,
  ): Promise<Acquisition<DynamoLeaseState> | null> {
    const { owner, clock } = this.#context;
    const input: GrantInput = {
      owner: owner.id,
      ownerName: owner.name,
      rvn: randomUUID(),
      leaseMs: owner.ttlMs,
      delayMs: owner.lockDelayMs,
      value: this.#value,
    };
    const sentAt = clock.monotonicNow();
    this.#sent.set(input.rvn, sentAt);
    if (this.#sent.size > MAX_REMEMBERED) this.#sent.delete(this.#sent.keys().next().value as string);
    const record = await write(input, this.#context.limits());
    return record ? this.granted(record, sentAt) : null;
  }

  #grant(expect: GrantExpectation): Promise<Acquisition<DynamoLeaseState> | null> {
    const line = this.#line;
    return this.#write((input, limits) => this.#context.table.grant(this.key, expect, input, limits, line));
  }

  /** Epoch mode: start a new fence span above `fence`, on the version just read or created. */
  async #grantInEpoch(expect: EpochExpectation, fence = 0): Promise<Acquisition<DynamoLeaseState> | null> {
    const { table } = this.#context;
    const epoch = await table.nextEpoch(this.#context.limits(), fence);
    const line = this.#line;
    return this.#write((input, limits) => table.grantInEpoch(this.key, expect, epoch, input, limits, line));
  }

  #takeSeen(record: LockRecord, expect: GrantExpectation): Promise<Acquisition<DynamoLeaseState> | null> {
    // Epoch mode, span used up (or an item created in counter mode): continue in a new epoch.
    if (
      this.#context.table.fenceMode === 'epoch' &&
      !(record.fenceMax !== undefined && record.fence < record.fenceMax)
    ) {
      return this.#grantInEpoch({ kind: 'version', rvn: record.rvn }, record.fence);
    }
    return this.#grant(expect);
  }
}
