import { type Clock, systemClock } from '../clock.js';
import { LeaseLostError } from '../errors.js';
import { KeepAlive } from '../keepalive.js';
import type { LockCapabilities, LockHolder, LockSession, LockWaiter, TryAcquireOptions } from '../lock.js';
import { AbstractLockProvider, type SessionSettings, sessionBoundsOf } from '../provider-base.js';
import { parseSettings, type SettingsOptions } from '../schema-helpers.js';
import { AbstractLockSession, type Acquisition, type ManagedLease } from '../session-base.js';
import type { LineEntry, WaitingLine } from '../waiting-line.js';
import { memoryConfigSchema } from './settings.js';
import { MemoryLockStore } from './store.js';

export { memoryDurationBounds } from './settings.js';

/** Options for {@link MemoryLockProvider}: the settings of `memoryConfigSchema` (`ttlMs`, `lockDelayMs`), and: */
export interface MemoryLockProviderOptions extends SettingsOptions<typeof memoryConfigSchema> {
  /** The shared "server". Providers that share a store see each other's locks. Defaults to a new store. */
  store?: MemoryLockStore;
  /** Defaults to the store's clock. */
  clock?: Clock;
}

const capabilities: LockCapabilities = {
  nativeWatch: true,
  minTtlMs: 1,
  lockDelay: true,
  list: true,
  forceRelease: true,
  fairQueue: true,
  holderTimes: true,
  waiters: true,
};

/**
 * The reference implementation of the lock contract, in process memory. Sessions renew through the same
 * {@link KeepAlive} as networked backends, so injected store failures exercise the real loss logic.
 */
export class MemoryLockProvider extends AbstractLockProvider<MemorySession> {
  readonly backend = 'memory';
  readonly capabilities = capabilities;
  readonly store: MemoryLockStore;

  constructor(options: MemoryLockProviderOptions = {}) {
    const store = options.store ?? new MemoryLockStore(options.clock ? { clock: options.clock } : {});
    super({
      label: 'memory',
      clock: options.clock ?? store.clock ?? systemClock,
      sessionDefaults: parseSettings(memoryConfigSchema, options, 'MemoryLockProvider'),
      sessionBounds: sessionBoundsOf(memoryConfigSchema),
    });
    this.store = store;
  }

  protected async startSession(settings: SessionSettings): Promise<MemorySession> {
    const { ttlMs, lockDelayMs, name, startedAt } = settings;
    const id = this.store.createSession({ ttlMs, lockDelayMs, name });
    return new MemorySession(this, id, ttlMs, startedAt);
  }

  protected async readHolder(key: string): Promise<LockHolder | null> {
    return this.store.holder(key);
  }

  protected async *watchKey(key: string, signal: AbortSignal): AsyncGenerator<LockHolder | null> {
    yield* this.store.subscribe(key, signal);
  }

  protected async listHolders(prefix: string): Promise<LockHolder[]> {
    return this.store.list(prefix);
  }

  protected async forceReleaseKey(key: string): Promise<boolean> {
    return this.store.forceRelease(key);
  }

  /** The store's line of waiters for `key`, first in line first; times on the store's clock. */
  waiters(key: string, _options: { signal?: AbortSignal } = {}): Promise<LockWaiter[]> {
    return this.keyCall(key, async () =>
      this.store.readWaiters(key).map((w, i) => ({
        sessionId: w.sessionId,
        position: i + 1,
        since: w.since,
        sinceSource: 'server' as const,
      })),
    );
  }
}

/** A place in a memory key's line of waiters. */
interface MemoryPlace {
  readonly key: string;
  ticket: number;
}

/** A session of the in-memory provider. */
export class MemorySession extends AbstractLockSession<undefined> implements LockSession {
  readonly #provider: MemoryLockProvider;
  readonly #keepAlive: KeepAlive;
  readonly #line: WaitingLine<MemoryPlace, undefined>;

  constructor(provider: MemoryLockProvider, id: string, ttlMs: number, startedAt: number) {
    super({
      id,
      ttlMs,
      clock: provider.clock,
      watch: (key, options) => provider.watch(key, options),
      nativeWatch: true,
    });
    this.#provider = provider;
    this.#keepAlive = new KeepAlive({
      ttlMs,
      startedAt,
      clock: provider.clock,
      renew: async () => provider.store.renewSession(id),
      onLost: (error) => this.markSessionLost(error),
    }).start();
    this.#line = memoryLine(provider.store, id);
  }

  /**
   * Test hook: behave like a crashed process. Renewal stops and nothing is released; the store expires the
   * session after its TTL and applies the lock-delay. The session's signal does not abort here (a dead
   * process observes nothing).
   */
  abandon(): void {
    this.#keepAlive.stop();
    this.haltWaiting();
  }

  protected override waitingLine(): WaitingLine<MemoryPlace, undefined> {
    return this.#line;
  }

  protected async acquireOnce(
    key: string,
    options: TryAcquireOptions,
  ): Promise<Acquisition<undefined> | null> {
    const result = this.#provider.store.acquire(this.id, key, options);
    return result ? { fence: result.fence, value: options.value, state: undefined } : null;
  }

  protected async releaseOnce(lease: ManagedLease<undefined>): Promise<boolean> {
    return this.#provider.store.release(this.id, lease.key, lease.fence);
  }

  protected async publishOnce(lease: ManagedLease<undefined>, value: string): Promise<void> {
    if (!this.#provider.store.publish(this.id, lease.key, lease.fence, value)) {
      const error = new LeaseLostError(`lease '${lease.key}' is no longer held`, { backend: 'memory' });
      lease.markLost(error);
      throw error;
    }
  }

  protected override onLeaseAcquired(lease: ManagedLease<undefined>): void {
    void this.#monitor(lease);
  }

  protected async endSession(): Promise<void> {
    this.#keepAlive.stop();
    this.#provider.store.destroySession(this.id);
  }

  async #monitor(lease: ManagedLease<undefined>): Promise<void> {
    for await (const holder of this.#provider.store.subscribe(lease.key, lease.signal)) {
      if (!holder || holder.sessionId !== this.id || holder.fence !== lease.fence) {
        lease.markLost(
          new LeaseLostError(`lease '${lease.key}' was taken away at the server`, { backend: 'memory' }),
        );
        return;
      }
    }
  }
}

/**
 * The store's line of waiters, as a {@link WaitingLine}: entering takes a free key nobody waits for, else
 * queues; a place takes the key only first in line; waiting follows the store's change counter.
 */
function memoryLine(store: MemoryLockStore, sessionId: string): WaitingLine<MemoryPlace, undefined> {
  const acquired = (
    fence: { fence: number } | null,
    options: TryAcquireOptions,
  ): Acquisition<undefined> | null =>
    fence ? { fence: fence.fence, value: options.value, state: undefined } : null;
  return {
    async enter(key, options): Promise<LineEntry<MemoryPlace, undefined>> {
      const now = acquired(store.acquire(sessionId, key, options, 'empty'), options);
      return now ? { acquired: now } : { place: { key, ticket: store.enqueue(sessionId, key) } };
    },
    async take(place, options) {
      // A place the store no longer knows (the key's line was lost with an operator's cleanup) re-enters.
      if (!store.isWaiting(place.key, place.ticket)) place.ticket = store.enqueue(sessionId, place.key);
      return acquired(store.acquire(sessionId, place.key, options, { ticket: place.ticket }), options);
    },
    async waitForTurn(place, signal) {
      const first = store.waiters(place.key)[0]?.ticket === place.ticket;
      if (first && store.inspect(place.key)?.holder === undefined) return true;
      const changes = store.lineChanges(place.key, signal);
      try {
        await changes.next();
        await changes.next();
      } finally {
        await changes.return(undefined);
      }
      return false;
    },
    async leave(place) {
      store.dequeue(place.key, place.ticket);
    },
  };
}
