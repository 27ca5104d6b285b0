import {
  canForceRelease,
  Election,
  FORCED_RELEASE_RISKS,
  type HolderTimeSource,
  type JsonValue,
  type LockHolder,
  type LockProvider,
  type LockWaiter,
  semaphoreLineKey,
  semaphoreQueues,
  semaphoresIn,
} from '@baton/core';
import { LIMITS } from './options.js';

/** A held lock as the console shows it. */
export interface LockRow {
  key: string;
  sessionId: string;
  fence: number;
  value: string | null;
  /** When the holder took the key (ms since the epoch), as the backend recorded it; null when it did not. */
  acquiredAt: number | null;
  /** Whose clock `acquiredAt` was read on: the backend server's, or the holder's (stamped at acquisition). */
  acquiredAtSource: HolderTimeSource | null;
  /**
   * The lock's age when it was listed: this console's wall clock minus `acquiredAt` (never below 0). Off by the
   * skew between the console's clock and the source clock, which is why the page names the source.
   */
  ageMs: number | null;
  /** The backend's own figure of how long the key stays taken if its holder stops renewing now (ms). */
  leaseRemainingMs: number | null;
  /** Where the backend has no such figure: an upper bound of it (Consul: 2 × session TTL; etcd; DynamoDB). */
  leaseRemainingAtMostMs: number | null;
  /**
   * The sessions waiting in the key's line, first in line first (at most `LIMITS.waitersPerKey`); null when
   * they were not read (the backend keeps no line, cannot list it, or the key is beyond `LIMITS.waiterKeys`).
   */
  waiters: WaiterRow[] | null;
  /** How many wait in line in all (more than `waiters` holds when the line is longer than the limit). */
  waitersTotal: number | null;
}

/** A waiting session as the console shows it. */
export interface WaiterRow {
  sessionId: string;
  /** 1 is served next. */
  position: number;
  /** Since when it waits (ms since the epoch), on the clock `sinceSource` names; null when not recorded. */
  since: number | null;
  sinceSource: HolderTimeSource | null;
}

/** A semaphore (or a worker's per-kind limit, `limit/<kind>`) found among the listed locks. */
export interface SemaphoreRow {
  name: string;
  /**
   * The limits its permits were taken under, ascending: one when every process agrees (more is a
   * misconfiguration that the processes refuse once they see it).
   */
  limits: number[];
  /** Permits held, in slot order, with their age and lease left as the locks table shows them. */
  permits: Array<
    Pick<LockRow, 'key' | 'sessionId' | 'fence' | 'ageMs' | 'acquiredAtSource'> & {
      slot: number;
      value: string | null;
    }
  >;
  /** Free permits under the one agreed limit; null when the limits disagree. */
  free: number | null;
  /**
   * Who waits for a permit: blocking acquisitions line up on `<name>/line` where the backend keeps a fair
   * line served on a watch. `head` is the holder of that key (the one waiter watching the slots); `behind`
   * counts the sessions queued behind it (null when the backend cannot list its line). `queued: false`:
   * waiters poll or watch the slots and race, so there is no line to show.
   */
  waiting: { queued: boolean; head: string | null; behind: number | null };
}

/** The locks view: the provider's own `list()`, or why there is none. */
export interface LocksView {
  backend: string;
  /** False when the backend has no `list` capability. */
  listable: boolean;
  prefix: string;
  holders: LockRow[];
  /** The backend can force-release a lock (capability `forceRelease`): the page offers it with the token. */
  forceRelease: boolean;
  /** What a forced release risks (core's `FORCED_RELEASE_RISKS`): the page's confirmation says it. */
  releaseRisks: readonly string[];
  /** More locks were held than `LIMITS.locks`. */
  truncated: boolean;
  /** The backend reports acquisition times and remaining leases (capability `holderTimes`). */
  holderTimes: boolean;
  /**
   * The backend's line of waiters: `listed` (capability `waiters`: each row's `waiters` is read), `none`
   * (no `fairQueue`: blocking acquisitions poll or watch and race, nobody waits in a line), or `unlisted`
   * (a line the backend cannot list).
   */
  line: 'listed' | 'none' | 'unlisted';
  /** Why reading some key's waiters failed, when it did (the rows show no waiters then). */
  waitersError: string | null;
  /** Semaphores among the listed locks (their permits are locks `<name>/slot/<i>` that record a limit). */
  semaphores: SemaphoreRow[];
  error: string | null;
}

/** The leader of one election key. */
export interface LeaderRow {
  key: string;
  leader: {
    id: string;
    term: number;
    sessionId: string;
    startedAt: string;
    /** Every field the leader published (host, address, application fields). */
    published: Record<string, JsonValue>;
  } | null;
  error: string | null;
}

/** Reads locks and leaders from one provider. */
export class LocksReader {
  readonly #provider: LockProvider;
  readonly #prefix: string;
  readonly #elections: Election[];

  constructor(provider: LockProvider, prefix: string, electionKeys: readonly string[]) {
    this.#provider = provider;
    this.#prefix = prefix;
    this.#elections = electionKeys.map((key) => new Election(provider, key));
  }

  /** The locks view; `now` is this console's wall clock (ms since the epoch), read for the ages. */
  async locks(now: () => number = Date.now): Promise<LocksView> {
    const provider = this.#provider;
    const capabilities = provider.capabilities;
    const view: LocksView = {
      backend: provider.backend,
      listable: Boolean(capabilities.list && provider.list),
      prefix: this.#prefix,
      forceRelease: canForceRelease(provider),
      releaseRisks: FORCED_RELEASE_RISKS,
      holders: [],
      truncated: false,
      holderTimes: capabilities.holderTimes === true,
      line: !capabilities.fairQueue
        ? 'none'
        : capabilities.waiters && provider.waiters
          ? 'listed'
          : 'unlisted',
      waitersError: null,
      semaphores: [],
      error: null,
    };
    if (!view.listable || !provider.list) return view;
    try {
      const holders = await provider.list(this.#prefix);
      const listedAt = now();
      view.truncated = holders.length > LIMITS.locks;
      view.holders = holders.slice(0, LIMITS.locks).map((holder) => lockRow(holder, listedAt));
      view.semaphores = semaphoreRows(holders, listedAt, semaphoreQueues(provider));
    } catch (error) {
      view.error = messageOf(error);
      return view;
    }
    if (view.line === 'listed') await this.#readWaiters(view);
    await this.#readSemaphoreLines(view);
    return view;
  }

  /** How many wait behind the head of each semaphore's line (one read per semaphore with a head). */
  async #readSemaphoreLines(view: LocksView): Promise<void> {
    const read = this.#provider.waiters?.bind(this.#provider);
    if (!read || view.line !== 'listed') return;
    const waiting = view.semaphores.filter((row) => row.waiting.head !== null).slice(0, LIMITS.waiterKeys);
    await Promise.all(
      waiting.map(async (row) => {
        try {
          row.waiting.behind = (await read(semaphoreLineKey(row.name))).length;
        } catch (error) {
          view.waitersError ??= `${semaphoreLineKey(row.name)}: ${messageOf(error)}`;
        }
      }),
    );
  }

  /** Each listed key's line (the first `LIMITS.waiterKeys` keys), a few reads at a time. */
  async #readWaiters(view: LocksView): Promise<void> {
    const read = this.#provider.waiters?.bind(this.#provider);
    if (!read) return;
    const rows = view.holders.slice(0, LIMITS.waiterKeys);
    for (let i = 0; i < rows.length; i += WAITER_READS) {
      await Promise.all(
        rows.slice(i, i + WAITER_READS).map(async (row) => {
          try {
            const waiters = await read(row.key);
            row.waitersTotal = waiters.length;
            row.waiters = waiters.slice(0, LIMITS.waitersPerKey).map(waiterRow);
          } catch (error) {
            view.waitersError ??= `${row.key}: ${messageOf(error)}`;
          }
        }),
      );
    }
  }

  async leaders(): Promise<LeaderRow[]> {
    return Promise.all(
      this.#elections.map(async (election): Promise<LeaderRow> => {
        try {
          const info = await election.leader();
          if (!info) return { key: election.key, leader: null, error: null };
          const { id, term, sessionId, startedAt, ...rest } = info;
          const published: Record<string, JsonValue> = {};
          for (const [name, value] of Object.entries(rest)) if (value !== undefined) published[name] = value;
          return { key: election.key, leader: { id, term, sessionId, startedAt, published }, error: null };
        } catch (error) {
          return { key: election.key, leader: null, error: messageOf(error) };
        }
      }),
    );
  }
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Lines read at the same time per snapshot. */
const WAITER_READS = 8;

function semaphoreRows(holders: readonly LockHolder[], listedAt: number, queued: boolean): SemaphoreRow[] {
  const byKey = new Map(holders.map((holder) => [holder.key, holder]));
  return semaphoresIn(holders)
    .slice(0, LIMITS.locks)
    .map((census) => {
      const limits = [...census.limits];
      const permits = census.permits.map((permit) => {
        const row = lockRow(byKey.get(permit.key)!, listedAt);
        return {
          key: permit.key,
          slot: permit.slot,
          sessionId: permit.sessionId,
          fence: permit.fence,
          value: permit.value ?? null,
          ageMs: row.ageMs,
          acquiredAtSource: row.acquiredAtSource,
        };
      });
      const limit = limits.length === 1 ? limits[0]! : null;
      return {
        name: census.name,
        limits,
        permits,
        free: limit === null ? null : Math.max(0, limit - permits.filter((p) => p.slot < limit).length),
        waiting: {
          queued,
          head: census.lineHead?.sessionId ?? null,
          behind: queued && !census.lineHead ? 0 : null,
        },
      };
    });
}

function lockRow(holder: LockHolder, listedAt: number): LockRow {
  const acquiredAt = holder.acquiredAt ?? null;
  return {
    key: holder.key,
    sessionId: holder.sessionId,
    fence: holder.fence,
    value: holder.value ?? null,
    acquiredAt,
    acquiredAtSource: acquiredAt === null ? null : (holder.acquiredAtSource ?? null),
    ageMs: acquiredAt === null ? null : Math.max(0, listedAt - acquiredAt),
    leaseRemainingMs: holder.leaseRemainingMs ?? null,
    leaseRemainingAtMostMs: holder.leaseRemainingAtMostMs ?? null,
    waiters: null,
    waitersTotal: null,
  };
}

function waiterRow(waiter: LockWaiter): WaiterRow {
  return {
    sessionId: waiter.sessionId,
    position: waiter.position,
    since: waiter.since ?? null,
    sinceSource: waiter.since === undefined ? null : (waiter.sinceSource ?? null),
  };
}
