/** How a lock acquisition ended. */
export type LockEnd = 'released' | 'invalidated' | 'deleted';

/** One successful lock acquisition, as recorded by the server. Times are the server clock's monotonic ms. */
export interface LockHistoryRecord {
  readonly key: string;
  readonly session: string;
  /** The entry's ModifyIndex written by the acquisition: the fencing token a client should have seen. */
  readonly modifyIndex: number;
  readonly lockIndex: number;
  readonly acquiredAt: number;
  readonly endedAt?: number;
  /**
   * `released`: `?release` or a txn `unlock`; `invalidated`: the holding session was destroyed, expired or lost
   * its checks (whatever its behavior); `deleted`: the key was deleted while held.
   */
  readonly end?: LockEnd;
}

interface MutableRecord {
  key: string;
  session: string;
  modifyIndex: number;
  lockIndex: number;
  acquiredAt: number;
  endedAt?: number;
  end?: LockEnd;
}

/** Server-side record of every committed acquisition and its end, for invariant checkers. */
export class LockHistory {
  readonly #records: MutableRecord[] = [];
  readonly #open = new Map<string, MutableRecord>();

  acquired(key: string, session: string, modifyIndex: number, lockIndex: number, at: number): void {
    // A holder can only appear after the previous one ended; close defensively so the log stays well-formed.
    this.ended(key, 'released', at);
    const record: MutableRecord = { key, session, modifyIndex, lockIndex, acquiredAt: at };
    this.#records.push(record);
    this.#open.set(key, record);
  }

  ended(key: string, end: LockEnd, at: number): void {
    const record = this.#open.get(key);
    if (!record) return;
    record.endedAt = at;
    record.end = end;
    this.#open.delete(key);
  }

  /** A snapshot of every record, oldest first. */
  snapshot(): LockHistoryRecord[] {
    return this.#records.map((r) => ({ ...r }));
  }
}
