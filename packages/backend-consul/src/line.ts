import { randomUUID } from 'node:crypto';
import {
  type Acquisition,
  BatonError,
  type Clock,
  jitter,
  type LineEntry,
  type LockHolder,
  sessionRetryDelay,
  sleep,
  type TryAcquireOptions,
  type WaitingLine,
  type WatchOptions,
  waitForFree,
} from '@baton/core';
import { sessionOf } from './entry.js';
import type { ConsulHttp, KvEntry, TxnError, TxnKvOp, TxnOutcome } from './http.js';
import type { KeyCodec } from './keys.js';

/**
 * The sub-prefix of a lock key under which its waiters line up: `<lock key>/.wait/<place id>`. A caller key
 * never encodes to a path segment starting with `.`, so these keys can collide with no lock and never
 * decode as one (`list()` skips them).
 */
export const LINE_SEGMENT = '/.wait/';

/** Most dead places one acquisition deletes along the way (a txn holds at most 128 operations). */
const MAX_CLEANUP = 32;

/** A blocking acquisition's place in a Consul key's line of waiters. */
export interface ConsulPlace {
  readonly key: string;
  readonly consulKey: string;
  /** `<consulKey>/.wait/` */
  readonly dir: string;
  /** This place's key in the line; a new one when the place is lost and re-entered. */
  placeKey: string;
  /** The place key's `CreateIndex`: its position (Consul's Raft index, global and rising). */
  createIndex: number;
  /** The line as last read, and the index to block on for the next change. */
  entries: KvEntry[];
  index: number;
}

/** What the line needs from its session. */
export interface ConsulLineHost<S> {
  readonly sessionId: string;
  readonly http: ConsulHttp;
  readonly codec: KeyCodec;
  readonly clock: Clock;
  readonly ttlMs: number;
  /** `?wait` of blocking queries. */
  readonly watchWaitMs: number;
  watch(key: string, options: WatchOptions): AsyncIterable<LockHolder | null>;
  /**
   * Takes the key with the session's usual guards (a key the session holds or may still hold is refused
   * locally), in one txn with `extraOps` appended (removing this place and dead places before it).
   */
  lock(key: string, options: TryAcquireOptions, extraOps: TxnKvOp[]): Promise<Acquisition<S> | null>;
  /** The typed error for a rolled-back txn that lined up for `key` (invalid session, permission, ...). */
  refused(key: string, errors: TxnError[]): Error;
  /** Deletes a place key in the background until it is gone, or the session ends. */
  dropLater(placeKey: string): void;
}

/**
 * The line of waiters of a Consul lock key: each waiter holds a key `<lock key>/.wait/<id>` acquired with
 * its session, so the session's invalidation releases (or deletes) it; places are ordered by `CreateIndex`,
 * Consul's global Raft index.
 *
 * - **enter**: one txn, `lock` of a new place key + `get-tree` of the line: the place and everyone ahead of
 *   it in one round trip.
 * - **wait**: a place with live places ahead of it waits on the line with blocking queries (`?recurse`); the
 *   first place waits on the lock key with blocking queries (the provider's watch). A place whose session
 *   is gone (no `Session`) does not count; the first waiter behind it deletes it.
 * - **take**: one txn, `lock` + `get` of the key (the fence, as for `tryAcquire`) + `delete` of this place
 *   (and of dead places ahead of it): taking the key and leaving the line are one step.
 */
export class ConsulLine<S> implements WaitingLine<ConsulPlace, S> {
  readonly #host: ConsulLineHost<S>;

  constructor(host: ConsulLineHost<S>) {
    this.#host = host;
  }

  async enter(key: string): Promise<LineEntry<ConsulPlace, S>> {
    const consulKey = this.#host.codec.encode(key);
    const place: ConsulPlace = {
      key,
      consulKey,
      dir: consulKey + LINE_SEGMENT,
      placeKey: '',
      createIndex: 0,
      entries: [],
      index: 0,
    };
    await this.#join(place);
    return { place };
  }

  async take(place: ConsulPlace, options: TryAcquireOptions): Promise<Acquisition<S> | null> {
    const own = place.entries.find((e) => e.Key === place.placeKey);
    if (!own || sessionOf(own) !== this.#host.sessionId) {
      // The place is gone (deleted by an operator, or Consul let go of it): line up again, at the end.
      await this.#join(place);
    }
    if (this.#liveAhead(place).length > 0) return null;
    const dead = this.#ahead(place).slice(0, MAX_CLEANUP);
    return this.#host.lock(place.key, options, [
      { Verb: 'delete', Key: place.placeKey },
      ...dead.map((entry): TxnKvOp => ({ Verb: 'delete', Key: entry.Key })),
    ]);
  }

  async waitForTurn(place: ConsulPlace, signal: AbortSignal): Promise<boolean> {
    if (this.#liveAhead(place).length === 0 && place.entries.some((e) => e.Key === place.placeKey)) {
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
    await this.#nextLine(place, signal);
    return false;
  }

  async leave(place: ConsulPlace): Promise<void> {
    try {
      await this.#host.http.deleteKey(place.placeKey);
    } catch (error) {
      // Until it is gone the place blocks the line (its session holds it): keep trying in the background.
      this.#host.dropLater(place.placeKey);
      throw error;
    }
  }

  /** Creates a new place at the end of the line and reads everything ahead of it, in one txn. */
  async #join(place: ConsulPlace): Promise<void> {
    place.placeKey = place.dir + randomUUID();
    let outcome: TxnOutcome;
    try {
      outcome = await this.#host.http.txn(`line up for '${place.key}'`, [
        // The value says since when it waits, for operators (`waiters`); nothing is decided on it.
        {
          Verb: 'lock',
          Key: place.placeKey,
          Value: String(this.#host.clock.wallNow()),
          Session: this.#host.sessionId,
        },
        { Verb: 'get-tree', Key: place.dir },
      ]);
    } catch (error) {
      // The place may exist without our knowing: it must not hold the line up for the session's life.
      this.#host.dropLater(place.placeKey);
      throw error;
    }
    if (!outcome.committed) throw this.#host.refused(place.key, outcome.errors);
    const [created, ...line] = outcome.results;
    place.createIndex = created?.CreateIndex ?? 0;
    place.entries = line;
    place.index = Math.max(1, ...line.map((e) => e.ModifyIndex));
  }

  /** Waits for the next change of the line (a blocking query), retrying transient errors. */
  async #nextLine(place: ConsulPlace, signal: AbortSignal): Promise<void> {
    for (let failures = 0; !signal.aborted; ) {
      try {
        const sent = place.index;
        const { entries, index } = await this.#host.http.listKeys(place.dir, {
          index: sent,
          waitMs: this.#host.watchWaitMs,
          signal,
        });
        place.entries = entries;
        place.index = index < sent ? 0 : Math.max(1, index);
        if (place.index === sent) {
          // The wait ran out without a change; a short pause keeps a server that answers at once from spinning us.
          await sleep(jitter(Math.max(10, Math.min(1_000, this.#host.ttlMs / 10)), 0.5), {
            signal,
            clock: this.#host.clock,
          }).catch(() => undefined);
        }
        return;
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof BatonError && !error.retryable) throw error;
        await sleep(sessionRetryDelay(failures++, this.#host.ttlMs), {
          signal,
          clock: this.#host.clock,
        }).catch(() => undefined);
      }
    }
  }

  /** Places created before this one, live or dead. */
  #ahead(place: ConsulPlace): KvEntry[] {
    return place.entries.filter((e) => e.Key !== place.placeKey && e.CreateIndex < place.createIndex);
  }

  /** Places before this one whose session still holds them. */
  #liveAhead(place: ConsulPlace): KvEntry[] {
    return this.#ahead(place).filter((e) => sessionOf(e) !== undefined);
  }
}
