import { randomUUID } from 'node:crypto';
import {
  type Acquisition,
  type LineEntry,
  pollDelay,
  sleep,
  type TryAcquireOptions,
  UnavailableError,
  type WaitingLine,
} from '@baton/core';
import { BACKEND } from './errors.js';
import { type DynamoLeaseState, GrantAttempt, type GrantContext } from './grant-attempt.js';
import type { ObservationBook } from './observations.js';
import type { LockRecord, WaiterRecord } from './record.js';
import type { CallLimits } from './requester.js';

/** A blocking acquisition's place in a lock item's line of waiters. */
export interface DynamoPlace {
  readonly key: string;
  /** Id of the place on the item (`w:<id>`, `wi:<id>`); a new one when the place is lost and re-entered. */
  id: string;
  /** The place's version as this session last wrote it. */
  version: string;
  /** The acquisition's grant writes, kept so a grant that was applied without our knowing is recognised. */
  readonly attempt: GrantAttempt;
  /** The item as last read (holder and whole line) and when that read returned (monotonic). */
  record: LockRecord | null;
  seenAt: number;
  /** For each other place on the item: how long its version has been seen unchanged, as of `seenAt`. */
  unchangedFor: Map<string, number>;
  /** Polls since this place last moved to the front (the poll interval grows with it). */
  polls: number;
  first: boolean;
}

/** What the line needs besides what one acquisition needs. */
export interface DynamoLineContext extends GrantContext {
  /** Observations of other waiters' place versions, on this process's monotonic clock. */
  placeObservations: ObservationBook;
  /** How long a place's version must stay unchanged before the place is presumed dead. */
  placeExpiryMs(leaseMs: number): number;
  /** The session's places, refreshed by its heartbeat while they wait. */
  places: Set<DynamoPlace>;
}

/**
 * The line of waiters of a DynamoDB lock item, kept on the item itself:
 *
 * - **enter**: a blocking acquire first tries the one-request grant, conditional on the key being free
 *   *and nobody waiting* (`waiting` absent or 0). Otherwise it lines up with one conditional UpdateItem that
 *   draws its ticket from the item's `tickets` counter (which only rises) and returns the whole item.
 * - **wait**: it polls the item (one consistent GetItem per poll, growing intervals up to a quarter of the
 *   lease, as before). Only the first live place may take the key; the grant is conditional on that place
 *   still existing and removes it in the same write.
 * - **liveness**: the session's heartbeat writes a new version into each of its places. A place whose
 *   version another process has seen unchanged for the waiter's lease plus the takeover margin, on its own
 *   monotonic clock, no longer counts; the first live waiter behind it removes it (conditional on that
 *   version). No clocks of different machines are compared.
 */
export function dynamoLine(context: DynamoLineContext): WaitingLine<DynamoPlace, DynamoLeaseState> {
  const { table, clock } = context;
  const keyOf = (place: DynamoPlace, waiter: WaiterRecord) => `${place.key}\n${waiter.id}`;

  /** Takes in what a read or write returned: observations of the holder and of every other place. */
  const look = (place: DynamoPlace, record: LockRecord | null, seenAt: number) => {
    place.record = record;
    place.seenAt = seenAt;
    place.unchangedFor.clear();
    if (!record) return;
    if (record.owner !== undefined || record.holdMs > 0)
      context.observations.observe(place.key, record.rvn, seenAt);
    for (const waiter of record.waiters) {
      if (waiter.id === place.id) continue;
      place.unchangedFor.set(
        waiter.id,
        context.placeObservations.observe(keyOf(place, waiter), waiter.version, seenAt),
      );
    }
    const first = liveAhead(place).length === 0 && record.waiters.some((w) => w.id === place.id);
    if (first && !place.first) place.polls = 0;
    place.first = first;
  };

  const isDead = (place: DynamoPlace, waiter: WaiterRecord) =>
    (place.unchangedFor.get(waiter.id) ?? 0) >= context.placeExpiryMs(waiter.leaseMs);

  const ahead = (place: DynamoPlace): WaiterRecord[] => {
    const waiters = place.record?.waiters ?? [];
    const mine = waiters.find((w) => w.id === place.id);
    return mine ? waiters.filter((w) => w.ticket < mine.ticket) : waiters;
  };
  const liveAhead = (place: DynamoPlace) => ahead(place).filter((w) => !isDead(place, w));

  /**
   * Lines `place` up at the end (a fresh id); when the item does not exist, takes the key instead (nobody
   * can be waiting for it). Resolves an acquisition, or `undefined` once the place is in line.
   */
  const join = async (place: DynamoPlace): Promise<Acquisition<DynamoLeaseState> | undefined> => {
    for (let round = 0; round < 3; round++) {
      place.id = randomUUID();
      place.version = randomUUID();
      place.attempt.line = { waiter: place.id };
      let record = await table.joinLine(
        place.key,
        { id: place.id, version: place.version, leaseMs: context.owner.ttlMs, sessionId: context.owner.id },
        context.limits(),
      );
      if (!record) {
        // Refused: the item is missing, or a retry of this very write found it applied already.
        const now = await table.read(place.key, context.limits());
        if (now?.waiters.some((w) => w.id === place.id)) record = now;
        else if (now) continue; // created meanwhile: line up on it
      }
      const seenAt = clock.monotonicNow();
      if (record) {
        context.places.add(place);
        const ours = place.attempt.ours(record);
        if (ours) {
          // An earlier grant of this acquisition was applied after all: the key is ours, the place is not needed.
          await leave(place);
          return ours;
        }
        look(place, record, seenAt);
        return undefined;
      }
      // No item (first use in epoch mode, or deleted): nobody can wait for it, so take it.
      place.attempt.line = 'empty';
      const decision = await place.attempt.decide(null, seenAt);
      if (decision !== 'held' && decision !== 'retry') return decision;
    }
    throw new UnavailableError(
      `could not line up for '${place.key}': its lock item kept appearing and disappearing`,
      { backend: BACKEND },
    );
  };

  const leave = async (place: DynamoPlace): Promise<void> => {
    context.places.delete(place);
    await table.removePlace(place.key, place.id, undefined, context.limits());
  };

  return {
    async enter(key: string, options: TryAcquireOptions): Promise<LineEntry<DynamoPlace, DynamoLeaseState>> {
      const attempt = new GrantAttempt(context, key, options.value, 'empty');
      if (!context.observations.has(key)) {
        const now = await attempt.assumeFree();
        if (now) return { acquired: now };
      }
      const place: DynamoPlace = {
        key,
        id: '',
        version: '',
        attempt,
        record: null,
        seenAt: 0,
        unchangedFor: new Map(),
        polls: 0,
        first: false,
      };
      const acquired = await join(place);
      return acquired ? { acquired } : { place };
    },

    async take(place: DynamoPlace): Promise<Acquisition<DynamoLeaseState> | null> {
      const record = place.record;
      const ours = place.attempt.ours(record);
      if (ours) {
        context.places.delete(place);
        return ours;
      }
      if (!record?.waiters.some((w) => w.id === place.id)) {
        // The place is gone: others presumed it dead (this process was paused past its lease), or the
        // item was deleted. Line up again, at the end.
        context.places.delete(place);
        return (await join(place)) ?? null;
      }
      if (liveAhead(place).length > 0) return null;
      for (const dead of ahead(place)) {
        await table.removePlace(place.key, dead.id, dead.version, context.limits());
      }
      const decision = await place.attempt.decide(record, place.seenAt);
      if (decision === 'held') return null;
      if (decision === 'retry') {
        place.polls = 0;
        return null;
      }
      context.places.delete(place);
      return decision;
    },

    async waitForTurn(place: DynamoPlace, signal: AbortSignal): Promise<boolean> {
      await sleep(pollDelay(place.polls++, context.owner.ttlMs), { signal, clock }).catch(() => undefined);
      if (signal.aborted) return false;
      const limits: CallLimits = { ...context.limits(), signal };
      const record = await table.read(place.key, limits);
      look(place, record, clock.monotonicNow());
      return false;
    },

    leave,
  };
}

/**
 * A waiter's heartbeat: writes a new version into `place`, so others keep counting it. Resolves once
 * DynamoDB answered (also when the place turned out gone); rejects on transport failure.
 */
export async function refreshPlace(
  context: Pick<DynamoLineContext, 'table'>,
  place: DynamoPlace,
  limits: CallLimits,
): Promise<void> {
  const version = randomUUID();
  if (await context.table.refreshPlace(place.key, place.id, version, limits)) place.version = version;
}
