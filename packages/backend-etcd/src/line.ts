import { randomUUID } from 'node:crypto';
import {
  type Acquisition,
  BatonError,
  type Clock,
  type LineEntry,
  type LockHolder,
  sessionRetryDelay,
  sleep,
  type TryAcquireOptions,
  type WaitingLine,
  type WatchOptions,
  waitForFree,
} from '@baton/core';
import type { ICompare, IKeyValue, IRequestOp, ITxnResponse } from 'etcd3';
import type { EtcdKeys } from './keys.js';
import { type EtcdRpc, revision } from './rpc.js';
import { nextChange } from './watch.js';

/** A blocking acquisition's place in the line of waiters of one key. */
export interface EtcdPlace {
  readonly key: string;
  /** This place's key; a new one when the place was lost and the waiter lined up again. */
  placeKey: Buffer;
  /** The place key's create revision: its position (etcd's global revision). */
  createRevision: number;
  /** The places as last read, oldest first, and the revision of that read. */
  line: IKeyValue[];
  readRevision: number;
}

/** What the line needs from its session. */
export interface EtcdLineHost {
  readonly leaseId: string;
  readonly rpc: EtcdRpc;
  readonly keys: EtcdKeys;
  readonly clock: Clock;
  readonly ttlMs: number;
  watch(key: string, options: WatchOptions): AsyncIterable<LockHolder | null>;
  /**
   * One txn that takes `key` for this session if the lock key and its guard are free and `compare` holds
   * (running `success` too), else runs `failure`. Resolves `undefined`, sending nothing, while the session
   * may not try (an earlier attempt on the key is in flight or unsettled). Marks the key as being acquired
   * for the duration, and settles an unknown outcome itself.
   */
  take(
    key: string,
    options: TryAcquireOptions,
    what: string,
    ops: { compare: ICompare[]; success: IRequestOp[]; failure: IRequestOp[] },
  ): Promise<ITxnResponse | undefined>;
  /** The acquisition a committed take made. */
  acquired(key: string, options: TryAcquireOptions, response: ITxnResponse): Acquisition<never>;
  /** Observes failures retried in the background. */
  report(error: unknown, context: string): void;
  /** Aborts when the session ends. */
  readonly signal: AbortSignal;
}

/**
 * The line of waiters of an etcd lock key, in the manner of etcd's `concurrency.Mutex`: each waiter puts a
 * key `<prefix>wait/<key>\0<uuid>` with its session lease (so a crashed waiter's place expires with its
 * session), places are ordered by create revision, and a waiter watches only the place just ahead of it.
 * Unlike the Mutex, the lock itself stays one key with its own create revision (the fence), so a plain
 * `tryAcquire` costs one txn and may take a free key nobody waits for.
 *
 * - **enter**: one txn: if the key, its lock-delay guard and the line are all empty, take the key;
 *   otherwise put a place and read the line.
 * - **take**: one txn: if the key and guard are free, this place exists and no place is older than it, take
 *   the key and delete the place; otherwise read the line again.
 */
export class EtcdLine<S> implements WaitingLine<EtcdPlace, S> {
  readonly #host: EtcdLineHost;

  constructor(host: EtcdLineHost) {
    this.#host = host;
  }

  async enter(key: string, options: TryAcquireOptions): Promise<LineEntry<EtcdPlace, S>> {
    const place: EtcdPlace = { key, placeKey: Buffer.alloc(0), createRevision: 0, line: [], readRevision: 0 };
    const dir = this.#host.keys.lineRange(key);
    const join = this.#newPlace(place);
    let response: ITxnResponse | undefined;
    try {
      response = await this.#host.take(key, options, `acquire or line up for '${key}'`, {
        compare: [
          { key: dir.from, range_end: dir.to, target: 'Create', result: 'Equal', create_revision: 0 },
        ],
        success: [],
        failure: join,
      });
      if (response?.succeeded) {
        return { acquired: this.#host.acquired(key, options, response) as Acquisition<S> };
      }
      response ??= await this.#host.rpc.txn(`line up for '${key}'`, [], join);
    } catch (error) {
      this.#placeUnsettled(place, error);
      throw error;
    }
    this.#joined(place, response);
    return { place };
  }

  async take(place: EtcdPlace, options: TryAcquireOptions): Promise<Acquisition<S> | null> {
    if (!place.line.some((kv) => kv.key.equals(place.placeKey))) {
      // The place is gone (an operator deleted it): line up again, at the end.
      const join = this.#newPlace(place);
      try {
        this.#joined(place, await this.#host.rpc.txn(`line up for '${place.key}'`, [], join));
      } catch (error) {
        this.#placeUnsettled(place, error);
        throw error;
      }
    }
    if (this.#ahead(place).length > 0) return null;
    const dir = this.#host.keys.lineRange(place.key);
    const response = await this.#host.take(place.key, options, `acquire '${place.key}' (first in line)`, {
      compare: [
        { key: place.placeKey, target: 'Create', result: 'Equal', create_revision: place.createRevision },
        {
          key: dir.from,
          range_end: dir.to,
          target: 'Create',
          result: 'Greater',
          create_revision: place.createRevision - 1,
        },
      ],
      success: [{ request_delete_range: { key: place.placeKey } }],
      failure: [{ request_range: { key: dir.from, range_end: dir.to } }],
    });
    if (!response) return null;
    if (response.succeeded) return this.#host.acquired(place.key, options, response) as Acquisition<S>;
    this.#read(place, response.responses[0]?.response_range.kvs ?? [], response.header.revision);
    return null;
  }

  async waitForTurn(place: EtcdPlace, signal: AbortSignal): Promise<boolean> {
    const ahead = this.#ahead(place).at(-1);
    if (ahead === undefined) {
      return waitForFree(
        {
          watch: (k, o) => this.#host.watch(k, o),
          nativeWatch: true,
          clock: this.#host.clock,
          ttlMs: this.#host.ttlMs,
        },
        place.key,
        signal,
        0,
      );
    }
    // Like etcd's Mutex: wait for the place just ahead to go (its waiter took the key, gave up, or died).
    for (let failures = 0; !signal.aborted; ) {
      try {
        await nextChange(
          { rpc: this.#host.rpc, clock: this.#host.clock, maxWaitMs: this.#host.ttlMs },
          ahead.key,
          String(place.readRevision + 1),
          signal,
        );
        const dir = this.#host.keys.lineRange(place.key);
        const response = await this.#host.rpc.range(`read the line of '${place.key}'`, dir.from, dir.to);
        this.#read(place, response.kvs, response.header.revision);
        return false;
      } catch (error) {
        if (signal.aborted) break;
        if (error instanceof BatonError && !error.retryable) throw error;
        await sleep(sessionRetryDelay(failures++, this.#host.ttlMs), {
          signal,
          clock: this.#host.clock,
        }).catch(() => undefined);
      }
    }
    return false;
  }

  async leave(place: EtcdPlace): Promise<void> {
    try {
      await this.#host.rpc.txn(
        `leave the line of '${place.key}'`,
        [],
        [{ request_delete_range: { key: place.placeKey } }],
      );
    } catch (error) {
      // Until it is gone the place blocks the line (its session keeps it alive): keep trying in the background.
      this.#dropLater(place.placeKey);
      throw error;
    }
  }

  /** A new place key for `place`, and the ops that put it at the end of the line and read the line. */
  #newPlace(place: EtcdPlace): IRequestOp[] {
    const dir = this.#host.keys.lineRange(place.key);
    place.placeKey = Buffer.concat([dir.from, Buffer.from(randomUUID())]);
    return [
      // The value says since when it waits, for operators (`waiters`); nothing is decided on it.
      {
        request_put: {
          key: place.placeKey,
          value: Buffer.from(String(this.#host.clock.wallNow())),
          lease: this.#host.leaseId,
        },
      },
      { request_range: { key: dir.from, range_end: dir.to } },
    ];
  }

  /** Records the place and the line after a txn that ran the ops of {@link EtcdLine.#newPlace}. */
  #joined(place: EtcdPlace, response: ITxnResponse): void {
    place.createRevision = revision(response.header.revision);
    this.#read(place, response.responses[1]?.response_range.kvs ?? [], response.header.revision);
  }

  /** A line-up whose outcome is unknown: the place may exist, and must not stay for the session's life. */
  #placeUnsettled(place: EtcdPlace, error: unknown): void {
    if (!(error instanceof BatonError) || error.retryable) this.#dropLater(place.placeKey);
  }

  #read(place: EtcdPlace, kvs: IKeyValue[], readRevision: string): void {
    place.line = [...kvs].sort((a, b) => revision(a.create_revision) - revision(b.create_revision));
    place.readRevision = revision(readRevision);
  }

  /** Places older than this one, oldest first. */
  #ahead(place: EtcdPlace): IKeyValue[] {
    return place.line.filter((kv) => revision(kv.create_revision) < place.createRevision);
  }

  /** Deletes a place in the background until it is gone or the session ends (its lease then takes it). */
  #dropLater(placeKey: Buffer): void {
    void (async () => {
      for (let attempt = 0; !this.#host.signal.aborted; attempt++) {
        await sleep(sessionRetryDelay(attempt, this.#host.ttlMs), {
          signal: this.#host.signal,
          clock: this.#host.clock,
        }).catch(() => undefined);
        if (this.#host.signal.aborted) return;
        try {
          await this.#host.rpc.txn('leave a line', [], [{ request_delete_range: { key: placeKey } }]);
          return;
        } catch (error) {
          this.#host.report(error, 'leave a line');
          if (error instanceof BatonError && !error.retryable) return;
        }
      }
    })();
  }
}
