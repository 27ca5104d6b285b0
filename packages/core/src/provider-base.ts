import type { Clock } from './clock.js';
import { checkDuration, type DurationBounds } from './duration-bounds.js';
import { ClosedError } from './errors.js';
import { whileHolding } from './hold-process.js';
import type {
  HolderReadOptions,
  LockCapabilities,
  LockHolder,
  LockProvider,
  LockSession,
  SessionOptions,
  WatchOptions,
} from './lock.js';
import { durationBoundsOf } from './schema-helpers.js';
import { validateKey } from './session-base.js';

/** What {@link AbstractLockProvider.startSession} gets: the session's settings, checked against their bounds. */
export interface SessionSettings {
  /** Session TTL: `openSession`'s, else the provider's default. */
  ttlMs: number;
  /** Lock-delay: `openSession`'s, else the provider's default. */
  lockDelayMs: number;
  /** `openSession`'s name, if any. */
  name: string | undefined;
  /** Monotonic time just before the backend is asked to create the session (the keep-alive counts from it). */
  startedAt: number;
}

/** Bounds of `openSession`'s `ttlMs` and `lockDelayMs`. */
export interface SessionBounds {
  ttlMs: DurationBounds;
  lockDelayMs: DurationBounds;
}

/** Constructor arguments of {@link AbstractLockProvider}. */
export interface ProviderInit {
  /** How messages name the provider: `Consul` gives `Consul lock provider is closed`. */
  label: string;
  clock: Clock;
  /** Defaults of `openSession`'s `ttlMs` and `lockDelayMs` (the provider's validated settings). */
  sessionDefaults: { ttlMs: number; lockDelayMs: number };
  /** Bounds of `openSession`'s `ttlMs` and `lockDelayMs`; see {@link sessionBoundsOf}. */
  sessionBounds: SessionBounds;
}

/**
 * The bounds a backend's settings schema declares for `ttlMs` and `lockDelayMs` (two `durationMs` fields),
 * so that `openSession` checks its options against the same bounds as the configuration. Throws a
 * `TypeError` (a programming error) when the schema lacks either.
 */
export function sessionBoundsOf(schema: { shape: Record<string, unknown> }): SessionBounds {
  const ttlMs = durationBoundsOf(schema.shape.ttlMs);
  const lockDelayMs = durationBoundsOf(schema.shape.lockDelayMs);
  if (!ttlMs || !lockDelayMs) {
    throw new TypeError('a backend settings schema needs ttlMs and lockDelayMs as durationMs() fields');
  }
  return { ttlMs, lockDelayMs };
}

/** Sorts holders by key (code-unit order, as every backend's `list` returns them). */
export function sortByKey(holders: LockHolder[]): LockHolder[] {
  return holders.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * Shared machinery of lock providers, so that a backend writes only what talks to its server:
 *
 * - `openSession` checks `ttlMs`/`lockDelayMs` against the backend's bounds (default: the provider's
 *   settings), keeps the set of open sessions and destroys a session that opened while the provider closed;
 * - `getHolder`, `watch`, `list`, `forceRelease` refuse invalid keys (`INVALID_ARGUMENT`) and a closed
 *   provider (`CLOSED`); `list` sorts by key; `watch` ends when the provider closes;
 * - every call that waits on the server holds the process (see {@link holdProcess}): a script whose only
 *   work is one of these calls does not exit mid-call;
 * - `close` (and `await using`) destroys every open session, releasing its leases, ends every watch, then
 *   calls {@link AbstractLockProvider.closeConnections}. Idempotent.
 *
 * A backend implements the five protected operations below and declares `backend` and `capabilities`.
 */
export abstract class AbstractLockProvider<Session extends LockSession = LockSession>
  implements LockProvider
{
  abstract readonly backend: string;
  abstract readonly capabilities: LockCapabilities;
  readonly clock: Clock;
  readonly #label: string;
  readonly #defaults: { ttlMs: number; lockDelayMs: number };
  readonly #bounds: SessionBounds;
  readonly #sessions = new Set<Session>();
  readonly #closing = new AbortController();
  #closed = false;

  constructor(init: ProviderInit) {
    this.clock = init.clock;
    this.#label = init.label;
    this.#bounds = init.sessionBounds;
    this.#defaults = {
      ttlMs: checkDuration('ttlMs', init.sessionDefaults.ttlMs, init.sessionBounds.ttlMs),
      lockDelayMs: checkDuration(
        'lockDelayMs',
        init.sessionDefaults.lockDelayMs,
        init.sessionBounds.lockDelayMs,
      ),
    };
  }

  /** Creates the backend's session (and starts renewing it). Rejects with typed errors. */
  protected abstract startSession(settings: SessionSettings): Promise<Session>;
  /**
   * The current holder of a valid `key`, or `null`. `times` is `false` when the caller has no use for the
   * holder's times (a backend may then skip what they cost).
   */
  protected abstract readHolder(
    key: string,
    signal: AbortSignal | undefined,
    options: { times: boolean },
  ): Promise<LockHolder | null>;
  /** The holder of a valid `key` now and after each change, until `signal` aborts (caller's or close). */
  protected abstract watchKey(
    key: string,
    signal: AbortSignal,
    options: WatchOptions,
  ): AsyncIterable<LockHolder | null>;
  /** Held locks whose caller key starts with `prefix`, in any order. */
  protected abstract listHolders(prefix: string): Promise<LockHolder[]>;
  /** Frees a valid `key` whoever holds it; `false` when nobody did. */
  protected abstract forceReleaseKey(key: string): Promise<boolean>;
  /** Closes clients and connections, after every session was destroyed. */
  protected closeConnections(): Promise<void> | void {}

  /** True once `close()` was called. */
  protected get closed(): boolean {
    return this.#closed;
  }

  /** The sessions' defaults (`ttlMs`, `lockDelayMs`). */
  protected get sessionDefaults(): { readonly ttlMs: number; readonly lockDelayMs: number } {
    return this.#defaults;
  }

  async openSession(options: SessionOptions = {}): Promise<Session> {
    this.assertOpen();
    const ttlMs = checkDuration('ttlMs', options.ttlMs ?? this.#defaults.ttlMs, this.#bounds.ttlMs);
    const lockDelayMs = checkDuration(
      'lockDelayMs',
      options.lockDelayMs ?? this.#defaults.lockDelayMs,
      this.#bounds.lockDelayMs,
    );
    const startedAt = this.clock.monotonicNow();
    const session = await whileHolding(() =>
      this.startSession({ ttlMs, lockDelayMs, name: options.name, startedAt }),
    );
    this.#sessions.add(session);
    session.signal.addEventListener('abort', () => this.#sessions.delete(session), { once: true });
    if (this.#closed) await session.destroy();
    return session;
  }

  getHolder(key: string, options: HolderReadOptions = {}): Promise<LockHolder | null> {
    return this.#call(key, () => this.readHolder(key, options.signal, { times: options.times !== false }));
  }

  watch(key: string, options: WatchOptions = {}): AsyncIterable<LockHolder | null> {
    validateKey(key);
    this.assertOpen();
    const signal = options.signal
      ? AbortSignal.any([options.signal, this.#closing.signal])
      : this.#closing.signal;
    return this.watchKey(key, signal, options);
  }

  async list(prefix = ''): Promise<LockHolder[]> {
    this.assertOpen();
    return sortByKey(await whileHolding(() => this.listHolders(prefix)));
  }

  forceRelease(key: string): Promise<boolean> {
    return this.#call(key, () => this.forceReleaseKey(key));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#sessions].map((session) => session.destroy()));
    this.#closing.abort(new ClosedError(`${this.#label} lock provider closed`));
    await this.closeConnections();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Throws `CLOSED` once the provider was closed. */
  protected assertOpen(): void {
    if (this.#closed) throw new ClosedError(`${this.#label} lock provider is closed`);
  }

  /**
   * Runs a read or change of one `key` the way `getHolder` does: refuses an invalid key (`INVALID_ARGUMENT`)
   * and a closed provider (`CLOSED`), and holds the process while it waits. For a backend's own methods
   * beyond the five operations (such as `waiters`).
   */
  protected keyCall<T>(key: string, work: () => Promise<T>): Promise<T> {
    return this.#call(key, work);
  }

  async #call<T>(key: string, work: () => Promise<T>): Promise<T> {
    validateKey(key);
    this.assertOpen();
    return whileHolding(work);
  }
}
