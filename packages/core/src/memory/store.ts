import { randomUUID } from 'node:crypto';
import { type Clock, systemClock, type TimerHandle } from '../clock.js';
import { SessionLostError, UnavailableError } from '../errors.js';
import type { LockHolder } from '../lock.js';
import { LatestValue } from '../watch.js';
import { SortedKeys } from './key-order.js';

interface StoredSession {
  id: string;
  name: string | undefined;
  ttlMs: number;
  lockDelayMs: number;
  timer: TimerHandle | undefined;
  /** Monotonic time at which the store invalidates the session unless it is renewed first. */
  expiresAt: number;
}

interface StoredKey {
  key: string;
  holder: string | undefined;
  fence: number;
  value: string | undefined;
  acquiredAt: number;
  /** Wall-clock time of the acquisition, on the store's clock (what {@link LockHolder.acquiredAt} reports). */
  acquiredWallAt: number;
  lockAtLeastForMs: number;
  /** Monotonic time before which nobody may acquire (lock-delay or lockAtLeastFor). */
  blockedUntil: number;
}

/** A key's change stream, kept apart from the key so that a free key can go while someone watches it. */
interface KeyWatch {
  readonly value: LatestValue<LockHolder | null>;
  followers: number;
}

/** One waiter in a key's line, as the store keeps it. */
export interface StoredWaiter {
  /** Position ticket: drawn from the store's global index when the waiter entered, so it only rises. */
  readonly ticket: number;
  readonly sessionId: string;
  /** Wall-clock time it entered the line, on the store's clock. */
  readonly since: number;
}

/**
 * How an acquisition relates to the key's line of waiters: `barge` takes a free key whoever waits
 * (`tryAcquire`); `empty` takes it only when nobody waits; `{ ticket }` only for the first waiter in line,
 * which leaves the line in the same step.
 */
export type LineCondition = 'barge' | 'empty' | { readonly ticket: number };

interface StoredLine {
  waiters: StoredWaiter[];
  /** Bumped on every change of the line or of the key's holder: what waiting places wait on. */
  revision: LatestValue<number>;
}

/** One lease grant as the store recorded it: the server-side history the chaos checker reads. */
export interface GrantRecord {
  key: string;
  sessionId: string;
  fence: number;
  grantedAt: number;
  endedAt: number | undefined;
  end: 'released' | 'expired' | 'destroyed' | 'forced' | undefined;
}

/** Options for {@link MemoryLockStore}. */
export interface MemoryLockStoreOptions {
  clock?: Clock;
  /**
   * The store invalidates a session `ttlMs × ttlMultiplier` after its last renewal (Consul uses 2). Must be
   * ≥ 1: the client treats its session as lost after `ttlMs`, so the store must never expire it sooner.
   */
  ttlMultiplier?: number;
  /**
   * Keep every grant for {@link MemoryLockStore.history} (tests and checkers). Default `false`: a long-running
   * process would otherwise keep a record per lock it ever took.
   */
  recordHistory?: boolean;
}

/**
 * The in-memory lock "server": shared by every provider and session in one process. It keeps the same rules
 * a real backend keeps (TTL, lock-delay on loss, lockAtLeastFor, a global fencing index that never restarts)
 * and offers test hooks: fault injection, key deletion and the grant history.
 */
export class MemoryLockStore {
  readonly clock: Clock;
  readonly ttlMultiplier: number;
  readonly #sessions = new Map<string, StoredSession>();
  readonly #keys = new Map<string, StoredKey>();
  readonly #watches = new Map<string, KeyWatch>();
  /** Free keys kept only while a lock-delay or lockAtLeastFor window runs: dropped once it has passed. */
  readonly #cooling = new Set<StoredKey>();
  #nextSweepAt = Number.NEGATIVE_INFINITY;
  readonly #recordHistory: boolean;
  readonly #lines = new Map<string, StoredLine>();
  readonly #order = new SortedKeys();
  readonly #history: GrantRecord[] = [];
  #index = 0;
  #failures = 0;

  constructor(options: MemoryLockStoreOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.ttlMultiplier = options.ttlMultiplier ?? 1;
    if (!(this.ttlMultiplier >= 1)) throw new RangeError('ttlMultiplier must be >= 1');
    this.#recordHistory = options.recordHistory ?? false;
  }

  /** Makes the next `count` operations fail with an `UNAVAILABLE` error, as a dropped connection would. */
  failNext(count = 1): void {
    this.#failures += count;
  }

  /** Cancels injected failures. */
  clearFaults(): void {
    this.#failures = 0;
  }

  /** Every grant so far, in grant order (empty unless the store was made with `recordHistory`). */
  history(): readonly GrantRecord[] {
    return this.#history;
  }

  createSession(options: { ttlMs: number; lockDelayMs: number; name?: string | undefined }): string {
    this.#maybeFail('create session');
    const session: StoredSession = {
      id: randomUUID(),
      name: options.name,
      ttlMs: options.ttlMs,
      lockDelayMs: options.lockDelayMs,
      timer: undefined,
      expiresAt: Number.POSITIVE_INFINITY,
    };
    this.#sessions.set(session.id, session);
    this.#armExpiry(session);
    return session.id;
  }

  renewSession(id: string): void {
    this.#maybeFail('renew session');
    const session = this.#sessions.get(id);
    if (!session) throw new SessionLostError(`session '${id}' not found`, { backend: 'memory' });
    this.#armExpiry(session);
  }

  hasSession(id: string): boolean {
    return this.#sessions.has(id);
  }

  /** Ends a session the way Consul's destroy does: keys still held are invalidated (lock-delay applies). */
  destroySession(id: string): void {
    this.#maybeFail('destroy session');
    this.#invalidate(id, 'destroyed');
  }

  /**
   * Takes `key` for `sessionId` when it is free; `null` when it is held or blocked (lock-delay,
   * lockAtLeastFor). `line` says whether the key's waiters count (see {@link LineCondition}); the default
   * ignores them, as `tryAcquire` does.
   */
  acquire(
    sessionId: string,
    key: string,
    options: { value?: string | undefined; lockAtLeastForMs?: number | undefined },
    line: LineCondition = 'barge',
  ): { fence: number } | null {
    this.#maybeFail('acquire');
    if (!this.#sessions.has(sessionId)) throw new SessionLostError(`session '${sessionId}' not found`);
    const now = this.clock.monotonicNow();
    this.#sweep(now);
    const entry = this.#keys.get(key);
    if (entry && (entry.holder !== undefined || now < entry.blockedUntil)) return null;
    if (line === 'empty' && this.waiters(key).length > 0) return null;
    if (typeof line === 'object') {
      if (this.waiters(key)[0]?.ticket !== line.ticket) return null;
      this.#removeWaiter(key, line.ticket);
    }
    const fence = ++this.#index;
    const target = entry ?? this.#newKey(key);
    target.holder = sessionId;
    target.fence = fence;
    target.value = options.value;
    target.acquiredAt = now;
    target.acquiredWallAt = this.clock.wallNow();
    target.lockAtLeastForMs = options.lockAtLeastForMs ?? 0;
    this.#cooling.delete(target);
    if (this.#recordHistory) {
      this.#history.push({ key, sessionId, fence, grantedAt: now, endedAt: undefined, end: undefined });
    }
    this.#publish(target);
    return { fence };
  }

  release(sessionId: string, key: string, fence: number): boolean {
    this.#maybeFail('release');
    const entry = this.#keys.get(key);
    if (!entry || entry.holder !== sessionId || entry.fence !== fence) return false;
    const minUntil = entry.acquiredAt + entry.lockAtLeastForMs;
    this.#free(entry, 'released');
    entry.blockedUntil = Math.max(entry.blockedUntil, minUntil);
    this.#forgetWhenFree(entry);
    return true;
  }

  publish(sessionId: string, key: string, fence: number, value: string): boolean {
    this.#maybeFail('publish');
    const entry = this.#keys.get(key);
    if (!entry || entry.holder !== sessionId || entry.fence !== fence) return false;
    entry.value = value;
    this.#index++;
    this.#publish(entry);
    return true;
  }

  /** Puts `sessionId` at the end of the line of waiters for `key`; returns its ticket. */
  enqueue(sessionId: string, key: string): number {
    this.#maybeFail('enqueue');
    if (!this.#sessions.has(sessionId)) throw new SessionLostError(`session '${sessionId}' not found`);
    const line = this.#line(key);
    const ticket = ++this.#index;
    line.waiters.push({ ticket, sessionId, since: this.clock.wallNow() });
    line.revision.set(line.revision.value + 1);
    return ticket;
  }

  /** Removes a waiter that gave up, or whose session ended, from the line. */
  dequeue(key: string, ticket: number): boolean {
    this.#maybeFail('dequeue');
    return this.#removeWaiter(key, ticket);
  }

  /** Removes the waiter of a session that ended (expired, destroyed) from the line. */
  expireWaiter(key: string, waiter: StoredWaiter): void {
    this.#removeWaiter(key, waiter.ticket);
  }

  /** {@link MemoryLockStore.waiters} as a client read: it fails like one when failures are injected. */
  readWaiters(key: string): readonly StoredWaiter[] {
    this.#maybeFail('read waiters');
    return this.waiters(key);
  }

  /** The waiters for `key`, in the order they will be served. */
  waiters(key: string): readonly StoredWaiter[] {
    return this.#lines.get(key)?.waiters ?? [];
  }

  /** Whether `ticket` still waits in the line for `key`. */
  isWaiting(key: string, ticket: number): boolean {
    return this.#lines.get(key)?.waiters.some((w) => w.ticket === ticket) ?? false;
  }

  /**
   * A counter of changes to `key`'s holder or line of waiters: yields the current count, then each newer
   * one, until `signal` aborts.
   */
  lineChanges(key: string, signal?: AbortSignal): AsyncGenerator<number> {
    return this.#line(key).revision.subscribe(signal);
  }

  /** Operator force-release: clears the holder, no lock-delay. */
  forceRelease(key: string): boolean {
    this.#maybeFail('force release');
    const entry = this.#keys.get(key);
    if (!entry || entry.holder === undefined) return false;
    this.#free(entry, 'forced');
    this.#forgetWhenFree(entry);
    return true;
  }

  /** Deletes the key entirely (as an operator might). The global index keeps fences increasing. */
  deleteKey(key: string): void {
    const entry = this.#keys.get(key);
    if (!entry) return;
    if (entry.holder !== undefined) this.#free(entry, 'forced');
    this.#drop(entry);
    this.#touchLine(key);
  }

  /** How many keys the store keeps a record of: held ones, and free ones inside a lock-delay window. */
  keyCount(): number {
    this.#sweep(this.clock.monotonicNow(), true);
    return this.#keys.size;
  }

  holder(key: string): LockHolder | null {
    this.#maybeFail('read');
    return this.#snapshot(this.#keys.get(key));
  }

  /** Held keys starting with `prefix`, in code-unit order of their keys (as Consul and DynamoDB list them). */
  list(prefix = ''): LockHolder[] {
    this.#maybeFail('list');
    const out: LockHolder[] = [];
    for (const key of this.#order.withPrefix(prefix, (k) => this.#keys.has(k))) {
      const snapshot = this.#snapshot(this.#keys.get(key));
      if (snapshot) out.push(snapshot);
    }
    return out;
  }

  /** Raw stored state of a key, for conformance checks. */
  inspect(key: string): { holder: string | undefined; fence: number; value: string | undefined } | null {
    const entry = this.#keys.get(key);
    return entry ? { holder: entry.holder, fence: entry.fence, value: entry.value } : null;
  }

  /** Change stream of a key's holder (yields the current holder first). */
  async *subscribe(key: string, signal?: AbortSignal): AsyncGenerator<LockHolder | null> {
    let watch = this.#watches.get(key);
    if (!watch) {
      watch = { value: new LatestValue(this.#snapshot(this.#keys.get(key))), followers: 0 };
      this.#watches.set(key, watch);
    }
    watch.followers++;
    try {
      // The remaining lease is re-read at each yield: the stored snapshot is from the last change.
      for await (const holder of watch.value.subscribe(signal)) yield holder && this.#refreshed(holder);
    } finally {
      if (--watch.followers === 0 && this.#watches.get(key) === watch) this.#watches.delete(key);
    }
  }

  #newKey(key: string): StoredKey {
    const entry: StoredKey = {
      key,
      holder: undefined,
      fence: 0,
      value: undefined,
      acquiredAt: 0,
      acquiredWallAt: 0,
      lockAtLeastForMs: 0,
      blockedUntil: Number.NEGATIVE_INFINITY,
    };
    this.#keys.set(key, entry);
    this.#order.add(key);
    return entry;
  }

  #snapshot(entry: StoredKey | undefined): LockHolder | null {
    if (!entry || entry.holder === undefined) return null;
    const session = this.#sessions.get(entry.holder);
    return {
      key: entry.key,
      sessionId: entry.holder,
      fence: entry.fence,
      value: entry.value,
      acquiredAt: entry.acquiredWallAt,
      acquiredAtSource: 'server',
      leaseRemainingMs: Math.max(0, (session?.expiresAt ?? 0) - this.clock.monotonicNow()),
    };
  }

  /** `holder` with its remaining lease as of now, when it is still the key's holder. */
  #refreshed(holder: LockHolder): LockHolder {
    const current = this.#snapshot(this.#keys.get(holder.key));
    return current && current.sessionId === holder.sessionId && current.fence === holder.fence
      ? { ...holder, leaseRemainingMs: current.leaseRemainingMs }
      : holder;
  }

  #publish(entry: StoredKey): void {
    this.#watches.get(entry.key)?.value.set(this.#snapshot(entry));
    this.#touchLine(entry.key);
  }

  /** Drops a free key's record now, or once its lock-delay / lockAtLeastFor window has passed. */
  #forgetWhenFree(entry: StoredKey): void {
    if (entry.holder !== undefined || this.#keys.get(entry.key) !== entry) return;
    if (this.clock.monotonicNow() >= entry.blockedUntil) this.#drop(entry);
    else this.#cooling.add(entry);
  }

  #drop(entry: StoredKey): void {
    this.#cooling.delete(entry);
    if (this.#keys.get(entry.key) !== entry) return;
    this.#keys.delete(entry.key);
    this.#order.deleted();
  }

  /** Drops cooled-down keys; at most once a second unless `force`d, so that acquisitions stay cheap. */
  #sweep(now: number, force = false): void {
    if (this.#cooling.size === 0 || (!force && now < this.#nextSweepAt)) return;
    this.#nextSweepAt = now + 1_000;
    for (const entry of this.#cooling) {
      if (entry.holder !== undefined) this.#cooling.delete(entry);
      else if (now >= entry.blockedUntil) this.#drop(entry);
    }
  }

  #line(key: string): StoredLine {
    let line = this.#lines.get(key);
    if (!line) {
      line = { waiters: [], revision: new LatestValue(0) };
      this.#lines.set(key, line);
    }
    return line;
  }

  #removeWaiter(key: string, ticket: number): boolean {
    const line = this.#lines.get(key);
    const at = line ? line.waiters.findIndex((w) => w.ticket === ticket) : -1;
    if (!line || at < 0) return false;
    line.waiters.splice(at, 1);
    line.revision.set(line.revision.value + 1);
    return true;
  }

  #touchLine(key: string): void {
    const line = this.#lines.get(key);
    line?.revision.set(line.revision.value + 1);
  }

  #free(entry: StoredKey, end: NonNullable<GrantRecord['end']>): void {
    const grant = this.#recordHistory ? this.#findGrant(entry) : undefined;
    if (grant) {
      grant.endedAt = this.clock.monotonicNow();
      grant.end = end;
    }
    entry.holder = undefined;
    this.#index++;
    this.#publish(entry);
  }

  #findGrant(entry: StoredKey): GrantRecord | undefined {
    for (let i = this.#history.length - 1; i >= 0; i--) {
      const g = this.#history[i]!;
      if (g.key === entry.key && g.fence === entry.fence) return g;
    }
    return undefined;
  }

  #armExpiry(session: StoredSession): void {
    if (session.timer !== undefined) this.clock.clearTimeout(session.timer);
    session.expiresAt = this.clock.monotonicNow() + session.ttlMs * this.ttlMultiplier;
    session.timer = this.clock.setTimeout(
      () => this.#invalidate(session.id, 'expired'),
      session.ttlMs * this.ttlMultiplier,
    );
  }

  #invalidate(id: string, end: 'expired' | 'destroyed'): void {
    const session = this.#sessions.get(id);
    if (!session) return;
    if (session.timer !== undefined) this.clock.clearTimeout(session.timer);
    this.#sessions.delete(id);
    const now = this.clock.monotonicNow();
    for (const [key, line] of [...this.#lines]) {
      for (const waiter of line.waiters.filter((w) => w.sessionId === id)) this.expireWaiter(key, waiter);
    }
    for (const entry of this.#keys.values()) {
      if (entry.holder !== id) continue;
      this.#free(entry, end);
      if (session.lockDelayMs > 0)
        entry.blockedUntil = Math.max(entry.blockedUntil, now + session.lockDelayMs);
      this.#forgetWhenFree(entry);
    }
  }

  #maybeFail(operation: string): void {
    if (this.#failures > 0) {
      this.#failures--;
      throw new UnavailableError(`memory store: injected failure during ${operation}`, {
        backend: 'memory',
        cause: new Error('ECONNRESET (injected)'),
      });
    }
  }
}
